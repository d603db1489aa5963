//! Sending messages to contact channels: a minimal SMTP client (plain SMTP, optional AUTH PLAIN)
//! for EMAIL channels, and an HTTP/1.1 JSON POST to a configured gateway for SMS and VOICE.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one send may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// An SMTP server, from `smtp://[user:pass@]host[:port]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl SmtpServer {
    pub fn from_url(url: &str) -> Result<SmtpServer, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("{url:?}: the SMTP URL must start with smtp://"))?;
        let authority = rest.split(['?', '/']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo.map(|u| u.split_once(':')) {
            Some(Some((u, p))) => (Some(u.to_string()), Some(p.to_string())),
            Some(None) => (userinfo.map(str::to_string), None),
            None => (None, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("{url:?}: invalid port {p:?}"))?,
            ),
            None => (hostport.to_string(), 25),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: the SMTP URL has no host"));
        }
        Ok(SmtpServer {
            host,
            port,
            username,
            password,
        })
    }
}

/// A gateway URL `http://host[:port]/path` (plain HTTP; put a TLS proxy in front for HTTPS).
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Gateway {
    pub fn from_url(url: &str) -> Result<Gateway, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: the gateway URL must start with http://"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("{url:?}: invalid port {p:?}"))?,
            ),
            None => (hostport.to_string(), 80),
        };
        if host.is_empty() {
            return Err(format!("{url:?}: the gateway URL has no host"));
        }
        Ok(Gateway {
            host,
            port,
            path: path.to_string(),
        })
    }
}

/// Send one email. Errors are human sentences for logs and ERROR receipts.
pub async fn send_email(
    server: &SmtpServer,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), String> {
    tokio::time::timeout(SEND_TIMEOUT, smtp_session(server, from, to, subject, body))
        .await
        .map_err(|_| "SMTP session timed out".to_string())?
}

async fn smtp_session(
    server: &SmtpServer,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), String> {
    let stream = TcpStream::connect((server.host.as_str(), server.port))
        .await
        .map_err(|e| {
            format!(
                "cannot connect to SMTP {}:{}: {e}",
                server.host, server.port
            )
        })?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 220).await?;
    command(&mut write, &mut read, "EHLO opsloop", 250).await?;
    if let (Some(user), Some(pass)) = (&server.username, &server.password) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        command(&mut write, &mut read, &format!("AUTH PLAIN {token}"), 235).await?;
    }
    command(&mut write, &mut read, &format!("MAIL FROM:<{from}>"), 250).await?;
    command(&mut write, &mut read, &format!("RCPT TO:<{to}>"), 250).await?;
    command(&mut write, &mut read, "DATA", 354).await?;
    let mut data = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        subject.replace(['\r', '\n'], " ")
    );
    for line in body.lines() {
        // Dot-stuffing (RFC 5321 4.5.2).
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    write.write_all(data.as_bytes()).await.map_err(io)?;
    expect(&mut read, 250).await?;
    let _ = write.write_all(b"QUIT\r\n").await;
    Ok(())
}

fn io(e: std::io::Error) -> String {
    format!("SMTP I/O error: {e}")
}

async fn command(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &str,
    want: u16,
) -> Result<(), String> {
    write
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(io)?;
    expect(read, want).await
}

/// Read one (possibly multi-line) reply and check its code.
async fn expect(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    want: u16,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.map_err(io)? == 0 {
            return Err("the SMTP server closed the connection".into());
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        if code != want {
            return Err(format!("SMTP server answered {:?}", line.trim_end()));
        }
        return Ok(());
    }
}

/// POST `doc` as JSON to the gateway; any 2xx is success.
pub async fn post_gateway(gateway: &Gateway, doc: &serde_json::Value) -> Result<(), String> {
    tokio::time::timeout(SEND_TIMEOUT, post(gateway, doc))
        .await
        .map_err(|_| "gateway request timed out".to_string())?
}

async fn post(gateway: &Gateway, doc: &serde_json::Value) -> Result<(), String> {
    let body = serde_json::to_vec(doc).unwrap_or_default();
    let mut stream = TcpStream::connect((gateway.host.as_str(), gateway.port))
        .await
        .map_err(|e| {
            format!(
                "cannot connect to gateway {}:{}: {e}",
                gateway.host, gateway.port
            )
        })?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: opsloop-contacts\r\n\r\n",
        gateway.path,
        gateway.host,
        gateway.port,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(&body).await.map_err(|e| e.to_string())?;
    let mut read = BufReader::new(stream);
    let mut status = String::new();
    read.read_line(&mut status)
        .await
        .map_err(|e| e.to_string())?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("gateway answered {:?}", status.trim_end()))
    }
}

/// The JSON document posted to an SMS/VOICE gateway.
pub fn gateway_doc(
    channel: &str,
    address: &str,
    message: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut doc = json!({"channel": channel, "address": address, "message": message});
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let s = SmtpServer::from_url("smtp://u:p@127.0.0.1:2525").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 2525));
        assert_eq!(s.username.as_deref(), Some("u"));
        assert_eq!(SmtpServer::from_url("smtp://mail").unwrap().port, 25);
        assert!(SmtpServer::from_url("http://mail").is_err());
        let g = Gateway::from_url("http://127.0.0.1:9000/sms").unwrap();
        assert_eq!((g.port, g.path.as_str()), (9000, "/sms"));
        assert_eq!(Gateway::from_url("http://gw").unwrap().path, "/");
        assert!(Gateway::from_url("https://gw").is_err());
    }

    #[tokio::test]
    async fn email_and_gateway_reach_loopback_servers() {
        use tokio::net::TcpListener;
        // SMTP sink answering every command.
        let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = smtp.local_addr().unwrap().port();
        let sink = tokio::spawn(async move {
            let (s, _) = smtp.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 hi\r\n").await.unwrap();
            let mut data = String::new();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        w.write_all(b"250 ok\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                    }
                } else if line.starts_with("DATA") {
                    in_data = true;
                    w.write_all(b"354 go\r\n").await.unwrap();
                } else if line.starts_with("EHLO") {
                    w.write_all(b"250-hello\r\n250 OK\r\n").await.unwrap();
                } else if line.starts_with("QUIT") {
                    break;
                } else {
                    w.write_all(b"250 ok\r\n").await.unwrap();
                }
            }
            data
        });
        let server = SmtpServer::from_url(&format!("smtp://127.0.0.1:{port}")).unwrap();
        send_email(&server, "a@x", "b@y", "Subj", "line\n.dot")
            .await
            .unwrap();
        let data = sink.await.unwrap();
        assert!(data.contains("Subject: Subj"), "{data}");
        assert!(data.contains("..dot"), "{data}");

        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = http.local_addr().unwrap().port();
        let recv = tokio::spawn(async move {
            let (mut s, _) = http.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            use tokio::io::AsyncReadExt;
            while !String::from_utf8_lossy(&got).contains("\"message\"") {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        let gw = Gateway::from_url(&format!("http://127.0.0.1:{port}/sms")).unwrap();
        post_gateway(&gw, &gateway_doc("SMS", "+1555", "hello", json!({"k": 1})))
            .await
            .unwrap();
        let req = recv.await.unwrap();
        assert!(req.starts_with("POST /sms HTTP/1.1"), "{req}");
        assert!(req.contains("\"k\":1"), "{req}");
    }
}
