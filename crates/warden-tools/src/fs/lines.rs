//! Text lines as `fs_grep` and `fs_tail` show them: bounded in memory while read and
//! in length when returned.

/// Bytes of one line kept for matching; the rest of a longer line is dropped.
pub const LINE_CAP: usize = 64 * 1024;

/// Characters of a line returned; longer ones are cut and end with `…`.
pub const SHOWN_CHARS: usize = 500;

/// A line as returned: without its `\r`, invalid UTF-8 replaced, cut at
/// [`SHOWN_CHARS`] (`cut`: bytes were already dropped while reading).
pub fn shown(line: &[u8], cut: bool) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let mut chars = text.char_indices();
    match chars.nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if cut => format!("{text}…"),
        None => text.into_owned(),
    }
}

/// Appends `more` to a line being assembled, keeping at most [`LINE_CAP`] bytes;
/// answers whether bytes were dropped.
pub fn push_capped(line: &mut Vec<u8>, more: &[u8]) -> bool {
    let room = LINE_CAP.saturating_sub(line.len());
    line.extend_from_slice(&more[..more.len().min(room)]);
    more.len() > room
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_marked() {
        assert_eq!(shown(b"plain\r", false), "plain");
        assert_eq!(shown(b"kept", true), "kept…");
        let long = "é".repeat(SHOWN_CHARS + 3);
        let cut = shown(long.as_bytes(), false);
        assert_eq!(cut.chars().count(), SHOWN_CHARS + 1);
        assert!(cut.ends_with('…'));
        let mut line = vec![b'x'; LINE_CAP - 1];
        assert!(push_capped(&mut line, b"yz"));
        assert_eq!(line.len(), LINE_CAP);
    }
}
