//! The human-readable description of a torrent (`piecemeal show`), with the size and date
//! formats it uses.

use super::Metainfo;

impl Metainfo {
    /// Human-readable summary in the spirit of `transmission-show`; has a line `Hash: <hex>`
    /// and one `Magnet: <link>`.
    pub fn describe(&self) -> String {
        let info = &self.info;
        let mut out = format!(
            "Name: {}\nHash: {}\nMagnet: {}\n",
            info.name,
            self.info_hash,
            self.magnet_link()
        );
        if let Some(by) = &self.created_by {
            out += &format!("Created by: {by}\n");
        }
        if let Some(date) = self.creation_date {
            out += &format!("Created on: {}\n", utc_date(date));
        }
        if let Some(comment) = &self.comment {
            out += &format!("Comment: {comment}\n");
        }
        out += &format!(
            "Piece Count: {}\nPiece Size: {}\nTotal Size: {}\nPrivacy: {}\n",
            info.piece_count(),
            human_size(info.piece_length),
            human_size(info.total_length()),
            if info.private {
                "Private torrent"
            } else {
                "Public torrent"
            },
        );
        out += "\nTRACKERS\n";
        for (i, tier) in self.tracker_tiers().iter().enumerate() {
            out += &format!("Tier #{}\n", i + 1);
            for url in tier {
                out += &format!("  {url}\n");
            }
        }
        // Numbered from 0: `piecemeal peer --only N` selects a file by this index.
        out += "\nFILES\n";
        for (index, file) in info.files.iter().enumerate() {
            out += &format!(
                "  {index}: {} ({})\n",
                info.relative_path(file).display(),
                human_size(file.length)
            );
        }
        out
    }
}

/// `2.50 MiB, 2621440 bytes` (binary units, plus the exact count).
fn human_size(bytes: u64) -> String {
    match binary_units(bytes) {
        None => format!("{bytes} bytes"),
        Some((value, unit)) => format!("{value:.2} {unit}, {bytes} bytes"),
    }
}

/// `bytes` in the largest binary unit (KiB to PiB) it reaches, or `None` under 1 KiB.
pub(crate) fn binary_units(bytes: u64) -> Option<(f64, &'static str)> {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return None;
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    Some((value, UNITS[unit]))
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix timestamp (proleptic Gregorian calendar).
fn utc_date(secs: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm; values stay far from overflow for any i64 input.
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Value;
    use crate::metainfo::MAX_TOTAL_LENGTH;
    use crate::metainfo::fixtures::*;

    #[test]
    fn formats_dates_and_sizes() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc_date(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(utc_date(1_763_731_200), "2025-11-21 13:20:00 UTC");
        // Extreme values must not overflow.
        assert!(utc_date(i64::MAX).ends_with("UTC"));
        assert!(utc_date(i64::MIN).ends_with("UTC"));
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(32768), "32.00 KiB, 32768 bytes");
        assert_eq!(human_size(2_621_440), "2.50 MiB, 2621440 bytes");
        assert_eq!(
            human_size(MAX_TOTAL_LENGTH),
            "1.00 PiB, 1125899906842624 bytes"
        );
    }

    #[test]
    fn describe_lists_everything() {
        let mut top = torrent(multi_info());
        set(&mut top, "created by", Value::from("me"));
        set(&mut top, "comment", Value::from("note"));
        let m = parse(top).unwrap();
        let text = m.describe();
        assert!(
            text.lines().any(|l| l == format!("Hash: {}", m.info_hash)),
            "{text}"
        );
        for needle in [
            "Name: dir\n",
            &format!(
                "Magnet: magnet:?xt=urn:btih:{}&dn=dir&tr=http%3A%2F%2Ft%2Fannounce\n",
                m.info_hash
            ),
            "Created by: me\n",
            "Comment: note\n",
            "Piece Count: 4\n",
            "Piece Size: 32 bytes\n",
            "Total Size: 100 bytes\n",
            "Privacy: Public torrent\n",
            "Tier #1\n  http://t/announce\n",
            "  0: dir/x/one (40 bytes)\n",
            "  1: dir/two (60 bytes)\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("Created on"));
    }
}
