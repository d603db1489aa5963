//! A minimal SMTP client for email deliveries: EHLO, optional STARTTLS (rustls), optional AUTH PLAIN,
//! one message per connection, dot-stuffed DATA, and SNS-style outcomes — 4xx replies and
//! connection failures are retried, 5xx replies are permanent. Also the RFC 5322 message builder
//! (UTF-8 text, base64 body, RFC 2047 subjects).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::http::Outcome;

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REPLY_LINES: usize = 100;

/// When to upgrade the connection with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    Never,
    /// When the server offers it.
    Opportunistic,
    /// Fail (and retry later) when the server does not offer it.
    Required,
}

/// Where and how to send email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub starttls: StartTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Envelope sender and `From` address.
    pub from: String,
    /// Name sent with EHLO.
    pub hello_name: String,
}

impl SmtpConfig {
    /// From `smtp://[user:pass@]host[:port][?starttls=never|opportunistic|required]`; the port
    /// defaults to 25, STARTTLS to opportunistic (`smtp+starttls://` means required).
    pub fn from_url(url: &str, from: &str) -> Result<SmtpConfig, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("the SMTP URL needs a scheme, e.g. smtp://host:25")?;
        let mut starttls = match scheme {
            "smtp" => StartTls::Opportunistic,
            "smtp+starttls" => StartTls::Required,
            other => {
                return Err(format!(
                    "unsupported SMTP URL scheme {other} (use smtp or smtp+starttls)"
                ))
            }
        };
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (Some(decode(a)), Some(decode(b))),
                None => (Some(decode(u)), None),
            },
            None => (None, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_matches(|c| c == '[' || c == ']').to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("invalid SMTP port {p}"))?,
            ),
            _ => (hostport.to_string(), 25),
        };
        if host.is_empty() {
            return Err("the SMTP URL has no host".into());
        }
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k == "starttls" {
                starttls = match v.as_ref() {
                    "never" => StartTls::Never,
                    "opportunistic" => StartTls::Opportunistic,
                    "required" => StartTls::Required,
                    other => return Err(format!("invalid starttls value {other}")),
                };
            }
        }
        Ok(SmtpConfig {
            host,
            port,
            starttls,
            username,
            password,
            from: from.to_string(),
            hello_name: "opsloop".into(),
        })
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub from_name: String,
    pub subject: String,
    pub body: String,
}

/// RFC 2047 encoding of a header value when it is not plain ASCII.
fn encode_header(value: &str) -> String {
    if value.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        value.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    }
}

/// The full RFC 5322 message (CRLF line endings, base64 body, 76-column lines).
pub fn render(email: &Email, from: &str, date: &str, message_id: &str) -> String {
    let from_name = email.from_name.replace(['"', '\\', '\r', '\n'], "");
    let mut out = String::new();
    out.push_str(&format!(
        "From: {} <{from}>\r\n",
        encode_header(&format!("\"{from_name}\""))
    ));
    out.push_str(&format!("To: <{}>\r\n", email.to));
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_header(&email.subject.replace(['\r', '\n'], " "))
    ));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: <{message_id}@opsloop>\r\n"));
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let b64 = base64::engine::general_purpose::STANDARD.encode(email.body.as_bytes());
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
    out
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A reply: code and text lines.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
) -> Result<Reply, String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(TIMEOUT, stream.read_line(&mut line))
            .await
            .map_err(|_| "smtp server timed out".to_string())?
            .map_err(|e| format!("smtp read: {e}"))?;
        if n == 0 {
            return Err("smtp server closed the connection".into());
        }
        let line = line.trim_end().to_string();
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("bad smtp reply: {line}"))?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if last {
            return Ok(Reply { code, lines });
        }
        if lines.len() > MAX_REPLY_LINES {
            return Err("smtp reply too long".into());
        }
    }
}

/// Send a command and check the reply class; a 4xx/5xx reply becomes the outcome.
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
    expect: &[u16],
) -> Result<Reply, Outcome> {
    stream
        .get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| Outcome::Retry(format!("smtp write: {e}")))?;
    let reply = read_reply(stream).await.map_err(Outcome::Retry)?;
    check(reply, expect, line.split(' ').next().unwrap_or(line))
}

fn check(reply: Reply, expect: &[u16], what: &str) -> Result<Reply, Outcome> {
    if expect.contains(&reply.code) {
        return Ok(reply);
    }
    let text = format!(
        "smtp {what} answered {} {}",
        reply.code,
        reply.lines.join(" ")
    );
    if (400..500).contains(&reply.code) {
        Err(Outcome::Retry(text))
    } else {
        Err(Outcome::Permanent(text))
    }
}

/// Deliver one message.
pub async fn send(
    config: &SmtpConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    email: &Email,
    date: &str,
    message_id: &str,
) -> Outcome {
    match send_inner(config, tls, email, date, message_id).await {
        Ok(()) => Outcome::Delivered,
        Err(outcome) => outcome,
    }
}

async fn send_inner(
    config: &SmtpConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    email: &Email,
    date: &str,
    message_id: &str,
) -> Result<(), Outcome> {
    let tcp = tokio::time::timeout(
        TIMEOUT,
        TcpStream::connect((config.host.as_str(), config.port)),
    )
    .await
    .map_err(|_| Outcome::Retry("smtp connect timed out".into()))?
    .map_err(|e| Outcome::Retry(format!("smtp connect: {e}")))?;
    let mut stream: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(tcp));
    let greeting = read_reply(&mut stream).await.map_err(Outcome::Retry)?;
    check(greeting, &[220], "greeting")?;
    let ehlo = format!("EHLO {}", config.hello_name);
    let mut caps = command(&mut stream, &ehlo, &[250]).await?;
    let offers_tls = caps
        .lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case("STARTTLS"));
    let want_tls = match config.starttls {
        StartTls::Never => false,
        StartTls::Opportunistic => offers_tls,
        StartTls::Required => {
            if !offers_tls {
                return Err(Outcome::Retry("smtp server does not offer STARTTLS".into()));
            }
            true
        }
    };
    if want_tls {
        let tls = tls.ok_or_else(|| Outcome::Retry("no tls configuration for STARTTLS".into()))?;
        command(&mut stream, "STARTTLS", &[220]).await?;
        let name = rustls_pki_types::ServerName::try_from(config.host.clone())
            .map_err(|e| Outcome::Permanent(format!("smtp host name: {e}")))?;
        let plain = stream.into_inner();
        let secured = tokio_rustls::TlsConnector::from(tls)
            .connect(name, plain)
            .await
            .map_err(|e| Outcome::Retry(format!("smtp tls: {e}")))?;
        stream = BufReader::new(Box::new(secured));
        caps = command(&mut stream, &ehlo, &[250]).await?;
    }
    if let Some(user) = &config.username {
        let offers_auth = caps
            .lines
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("AUTH"));
        if offers_auth {
            let token = format!("\0{user}\0{}", config.password.as_deref().unwrap_or(""));
            let b64 = base64::engine::general_purpose::STANDARD.encode(token.as_bytes());
            command(&mut stream, &format!("AUTH PLAIN {b64}"), &[235]).await?;
        }
    }
    command(&mut stream, &format!("MAIL FROM:<{}>", config.from), &[250]).await?;
    command(&mut stream, &format!("RCPT TO:<{}>", email.to), &[250, 251]).await?;
    command(&mut stream, "DATA", &[354]).await?;
    let text = render(email, &config.from, date, message_id);
    let mut data = String::with_capacity(text.len() + 8);
    for line in text.split("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    // `text` ends with CRLF, so the split left one empty final line: replace it with the terminator.
    data.truncate(data.len() - 2);
    data.push_str(".\r\n");
    stream
        .get_mut()
        .write_all(data.as_bytes())
        .await
        .map_err(|e| Outcome::Retry(format!("smtp write: {e}")))?;
    let reply = read_reply(&mut stream).await.map_err(Outcome::Retry)?;
    check(reply, &[250], "DATA")?;
    let _ = command(&mut stream, "QUIT", &[221]).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let c = SmtpConfig::from_url("smtp://127.0.0.1:2525", "sns@example.com").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.starttls),
            ("127.0.0.1", 2525, StartTls::Opportunistic)
        );
        let c =
            SmtpConfig::from_url("smtp+starttls://u%40x:p%3Aw@mail.example.com", "a@b.c").unwrap();
        assert_eq!((c.port, c.starttls), (25, StartTls::Required));
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u@x"), Some("p:w"))
        );
        let c = SmtpConfig::from_url("smtp://h:25?starttls=never", "a@b.c").unwrap();
        assert_eq!(c.starttls, StartTls::Never);
        assert!(SmtpConfig::from_url("http://h", "a@b.c").is_err());
        assert!(SmtpConfig::from_url("smtp://:25", "a@b.c").is_err());
        assert!(SmtpConfig::from_url("smtp://h:x", "a@b.c").is_err());
    }

    #[test]
    fn rendered_messages_encode_headers_and_body() {
        let email = Email {
            to: "ops@example.com".into(),
            from_name: "Alerts".into(),
            subject: "Grüße".into(),
            body: ".dot\nline".into(),
        };
        let text = render(
            &email,
            "sns@example.com",
            "Thu, 1 Jan 1970 00:00:00 +0000",
            "id",
        );
        assert!(text.contains("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n"));
        assert!(text.contains("From: \"Alerts\" <sns@example.com>\r\n"));
        assert!(text.contains("\r\n\r\nLmRvdApsaW5l\r\n"));
        assert!(text.split("\r\n").all(|l| l.len() <= 998));
    }
}
