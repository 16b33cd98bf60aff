//! What `piecemeal remote` prints for people: the list, files and show pages in aligned
//! columns, with short numbers (sizes in binary units, rates per second, times as `1h05m`).

use super::control::{TorrentDetail, TorrentStatus, TorrentSummary};
use crate::metainfo::show::binary_units;

/// Columns of text, left-aligned unless marked as numbers.
pub(super) struct Table {
    headers: Vec<&'static str>,
    /// Per column: right-aligned (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a header starting with `>` is right-aligned (the `>` is
    /// not printed).
    pub(super) fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// The header line and the rows, columns two spaces apart, no trailing spaces.
    pub(super) fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.headers[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let mut out = String::new();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = " ".repeat(widths[i] - cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `1.5 MiB`, `512 B`.
pub(super) fn size(bytes: u64) -> String {
    match binary_units(bytes) {
        None => format!("{bytes} B"),
        Some((value, unit)) => format!("{value:.1} {unit}"),
    }
}

/// `1.5 MiB/s`, or `-` when nothing moves.
pub(super) fn rate(bytes_per_sec: u64) -> String {
    if bytes_per_sec == 0 {
        "-".into()
    } else {
        format!("{}/s", size(bytes_per_sec))
    }
}

/// A limit: `unlimited` for 0.
pub(super) fn limit(bytes_per_sec: u64) -> String {
    if bytes_per_sec == 0 {
        "unlimited".into()
    } else {
        format!("{}/s", size(bytes_per_sec))
    }
}

/// `2h05m`, `3m07s`, `42s`, or `-` when unknown.
pub(super) fn eta(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s >= 100 * 3600 => format!("{}d", s / 86400),
        Some(s) if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{s}s"),
    }
}

/// `45.3%` from a fraction.
pub(super) fn percent(fraction: f64) -> String {
    format!("{:.1}%", (fraction * 100.0).clamp(0.0, 100.0))
}

/// A status as the API names it, with spaces.
pub(super) fn status(status: TorrentStatus) -> &'static str {
    match status {
        TorrentStatus::FetchingMetadata => "fetching metadata",
        TorrentStatus::Checking => "checking",
        TorrentStatus::Downloading => "downloading",
        TorrentStatus::Seeding => "seeding",
        TorrentStatus::Paused => "paused",
        TorrentStatus::Error => "error",
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The `list` table.
pub(super) fn list(torrents: &[TorrentSummary]) -> String {
    let mut t = Table::new(&[
        "ID", "NAME", "STATUS", ">DONE", ">SIZE", ">DOWN", ">UP", ">PEERS", ">ETA", ">RATIO",
    ]);
    for s in torrents {
        t.row(vec![
            s.id.chars().take(8).collect(),
            clip(&s.name, 40),
            status(s.status).to_string(),
            percent(s.progress),
            size(s.size),
            rate(s.download_rate),
            rate(s.upload_rate),
            s.peers.to_string(),
            eta(s.eta_secs),
            format!("{:.2}", s.ratio),
        ]);
    }
    if torrents.is_empty() {
        return "no torrents\n".into();
    }
    t.render()
}

/// The `files` table.
pub(super) fn files(detail: &TorrentDetail) -> String {
    let mut t = Table::new(&[">#", "FETCH", ">DONE", ">SIZE", "PATH"]);
    for f in &detail.files {
        t.row(vec![
            f.index.to_string(),
            if f.wanted { "yes" } else { "no" }.into(),
            percent(f.done as f64 / f.length.max(1) as f64),
            size(f.length),
            f.path.clone(),
        ]);
    }
    t.render()
}

/// The `show` page: the summary, then files, peers and trackers.
pub(super) fn show(d: &TorrentDetail) -> String {
    let s = &d.summary;
    let mut out = format!(
        "id        {}\nname      {}\nstatus    {}{}\nprogress  {} of {}\n\
         rates     down {}, up {}\nratio     {:.2} (up {}, down {})\nETA       {}\n\
         limits    up {}, down {}\npieces    {}\nmagnet    {}\n",
        s.id,
        s.name,
        status(s.status),
        s.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        percent(s.progress),
        size(s.size),
        rate(s.download_rate),
        rate(s.upload_rate),
        s.ratio,
        size(s.uploaded),
        size(s.downloaded),
        eta(s.eta_secs),
        limit(s.limits.upload),
        limit(s.limits.download),
        d.piece_count,
        d.magnet,
    );
    out.push_str("\nfiles\n");
    out.push_str(&files(d));
    let mut peers = Table::new(&["ADDRESS", "CLIENT", ">HAS", ">DOWN", ">UP"]);
    for p in &d.peer_list {
        peers.row(vec![
            p.addr.clone(),
            p.client.clone().unwrap_or_else(|| "?".into()),
            percent(p.progress),
            rate(p.download_rate),
            rate(p.upload_rate),
        ]);
    }
    out.push_str(&format!("\npeers ({})\n", d.peer_list.len()));
    if !d.peer_list.is_empty() {
        out.push_str(&peers.render());
    }
    let mut trackers = Table::new(&["URL", ">PEERS", "ERROR"]);
    for tr in &d.trackers {
        trackers.row(vec![
            tr.url.clone(),
            tr.peers.map_or("-".into(), |n| n.to_string()),
            tr.error.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&format!("\ntrackers ({})\n", d.trackers.len()));
    if !d.trackers.is_empty() {
        out.push_str(&trackers.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::control::{FileInfo, Limits};
    use super::*;

    #[test]
    fn columns_line_up_numbers_to_the_right() {
        let mut table = Table::new(&["NAME", ">DONE"]);
        table.row(vec!["débutant".into(), "5.0%".into()]);
        table.row(vec!["a".into(), "100.0%".into()]);
        assert_eq!(
            table.render(),
            "NAME        DONE\ndébutant    5.0%\na         100.0%\n"
        );
    }

    #[test]
    fn numbers_read_short() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(rate(0), "-");
        assert_eq!(rate(2 * 1024 * 1024), "2.0 MiB/s");
        assert_eq!(limit(0), "unlimited");
        assert_eq!(eta(None), "-");
        assert_eq!(eta(Some(42)), "42s");
        assert_eq!(eta(Some(187)), "3m07s");
        assert_eq!(eta(Some(7500)), "2h05m");
        assert_eq!(eta(Some(400 * 3600)), "16d");
        assert_eq!(percent(0.4534), "45.3%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(status(TorrentStatus::FetchingMetadata), "fetching metadata");
    }

    fn summary(name: &str, status: TorrentStatus, progress: f64) -> TorrentSummary {
        TorrentSummary {
            id: "c12fe1c06bba254a9dc9f519b335aa7c1367a88a".into(),
            name: name.into(),
            status,
            size: 661_651_456,
            done: (661_651_456.0 * progress) as u64,
            progress,
            download_rate: 8_598_323,
            upload_rate: 0,
            downloaded: 0,
            uploaded: 0,
            ratio: 0.0,
            peers: 3,
            eta_secs: Some(45),
            error: None,
            limits: Limits::default(),
        }
    }

    #[test]
    fn list_is_one_aligned_row_per_torrent() {
        assert_eq!(list(&[]), "no torrents\n");
        let text = list(&[
            summary("debian.iso", TorrentStatus::Downloading, 0.4134),
            summary("a", TorrentStatus::FetchingMetadata, 0.0),
        ]);
        assert_eq!(
            text,
            "ID        NAME        STATUS              DONE       SIZE       DOWN  UP  PEERS  ETA  RATIO\n\
             c12fe1c0  debian.iso  downloading        41.3%  631.0 MiB  8.2 MiB/s   -      3  45s   0.00\n\
             c12fe1c0  a           fetching metadata   0.0%  631.0 MiB  8.2 MiB/s   -      3  45s   0.00\n"
        );
    }

    #[test]
    fn files_say_which_are_fetched() {
        let mut detail = TorrentDetail {
            summary: summary("set", TorrentStatus::Seeding, 1.0),
            magnet: String::new(),
            files: Vec::new(),
            peer_list: Vec::new(),
            trackers: Vec::new(),
            piece_count: 0,
            pieces: String::new(),
        };
        for (index, wanted) in [(0, false), (1, true)] {
            detail.files.push(FileInfo {
                index,
                path: format!("set/{index}.bin"),
                length: 2048,
                done: 1024 * index as u64,
                wanted,
            });
        }
        assert_eq!(
            files(&detail),
            "#  FETCH   DONE     SIZE  PATH\n\
             0  no      0.0%  2.0 KiB  set/0.bin\n\
             1  yes    50.0%  2.0 KiB  set/1.bin\n"
        );
    }
}
