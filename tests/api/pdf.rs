//! A minimal PDF writer for tests: real, valid PDFs with known text and no dependency beyond std.
//!
//! It exists so tests can upload PDFs whose content they control without committing opaque binaries
//! produced by some other tool. Each page draws its lines in Helvetica (a standard font every reader
//! knows, so no font program is embedded); the document title goes into the Info dictionary.

/// Builds a PDF with one page per entry of `pages`, each line of a page drawn on its own baseline.
///
/// Page text should be ASCII: it is written with the font's single-byte encoding, so other characters
/// become `?`. The title may be any Unicode text (it is stored as UTF-16 when it is not ASCII).
pub fn simple_pdf(title: &str, pages: &[Vec<&str>]) -> Vec<u8> {
    // Fixed object numbers: 1 catalog, 2 page tree, 3 font, 4 info; then a page and its content per page.
    let page_ids: Vec<usize> = (0..pages.len()).map(|i| 5 + 2 * i).collect();
    let mut objects: Vec<Vec<u8>> = Vec::new();

    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = page_ids.iter().map(|id| format!("{id} 0 R")).collect();
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()).into_bytes());
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec());
    objects.push(format!("<< /Title {} /Producer (frontdesk test support) >>", text_string(title)).into_bytes());

    for (lines, page_id) in pages.iter().zip(&page_ids) {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                page_id + 1
            )
            .into_bytes(),
        );
        let mut content = String::new();
        for (i, line) in lines.iter().enumerate() {
            // 16pt leading from the top margin keeps lines apart, so extractors see separate lines.
            let y = 720 - 16 * i;
            content.push_str(&format!("BT /F1 12 Tf 72 {y} Td {} Tj ET\n", literal_string(line)));
        }
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content.as_bytes());
        stream.extend_from_slice(b"endstream");
        objects.push(stream);
    }

    // The high bytes in the comment tell transfer tools the file is binary, as the PDF spec recommends.
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }

    let xref_offset = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
    // Every xref entry must be exactly 20 bytes, hence the two-character line ends.
    out.extend_from_slice(b"0000000000 65535 f\r\n");
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF literal string; characters outside printable ASCII become `?`.
fn literal_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push(')');
    out
}

/// A PDF text string: literal when ASCII, otherwise UTF-16BE with a byte-order mark in hex form.
fn text_string(text: &str) -> String {
    if text.chars().all(|c| matches!(c, ' '..='~')) {
        return literal_string(text);
    }
    let mut hex = String::from("<FEFF");
    for unit in text.encode_utf16() {
        hex.push_str(&format!("{unit:04X}"));
    }
    hex.push('>');
    hex
}
