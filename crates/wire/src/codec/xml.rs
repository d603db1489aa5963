//! A minimal XML writer for awsQuery responses and errors: elements, escaped text, nothing else.
//! Characters XML 1.0 cannot carry at all (most C0 controls) are replaced by U+FFFD so the output
//! always parses.

/// Builds an XML document into a string.
pub(crate) struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub(crate) fn new() -> Self {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        XmlWriter { out }
    }

    /// `<name xmlns="ns">`.
    pub(crate) fn open_ns(&mut self, name: &str, ns: Option<&str>) {
        self.out.push('<');
        self.out.push_str(name);
        if let Some(ns) = ns {
            self.out.push_str(" xmlns=\"");
            escape_into(&mut self.out, ns);
            self.out.push('"');
        }
        self.out.push('>');
    }

    pub(crate) fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    pub(crate) fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Escaped character data.
    pub(crate) fn text(&mut self, s: &str) {
        escape_into(&mut self.out, s);
    }

    /// `<name>text</name>`.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) {
        self.open(name);
        self.text(text);
        self.close(name);
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Append `s` escaped for XML text and attribute values.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let mut last = 0;
    for (i, c) in s.char_indices() {
        let rep: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            '\r' => "&#13;",
            '\t' | '\n' => continue,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => "\u{FFFD}",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + c.len_utf8();
    }
    out.push_str(&s[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        let mut s = String::new();
        escape_into(&mut s, "a<b>&\"c\"'d'\u{1}\r\n\té");
        assert_eq!(
            s,
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;\u{FFFD}&#13;\n\té"
        );
    }

    #[test]
    fn writes_nested_elements() {
        let mut w = XmlWriter::new();
        w.open_ns("R", Some("http://x/?a&b"));
        w.leaf("A", "1 < 2");
        w.close("R");
        assert_eq!(w.finish(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"http://x/?a&amp;b\"><A>1 &lt; 2</A></R>");
    }
}
