//! The little HTTP that `bosun probe` needs: parse an `http://` URL and read the status
//! of a GET with a plain blocking socket. The probe runs every few seconds in every
//! container, so it starts no runtime and links no client library.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// An `http://host:port/path` URL, split for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` (port 80 when the URL has none).
    pub authority: String,
    /// The path and query, `/` when empty.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{url}' is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpUrl {
            authority,
            path: path.to_owned(),
        })
    }
}

/// GET `url` with a blocking socket, everything bounded by `timeout`; the status code.
pub fn get_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let url = HttpUrl::parse(url)?;
    let deadline = Instant::now() + timeout;
    let addr = url
        .authority
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", url.authority))?
        .next()
        .ok_or_else(|| format!("{}: no address", url.authority))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    let left = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(left(deadline)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bosun-probe\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    // Only the status line is needed: "HTTP/1.1 200 OK".
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        stream
            .set_read_timeout(Some(left(deadline)))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
    let line = std::str::from_utf8(&head[..got]).unwrap_or("");
    line.strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{addr}: not an HTTP response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:9901/readyz").unwrap();
        assert_eq!(u.authority, "127.0.0.1:9901");
        assert_eq!(u.path, "/readyz");
        let u = HttpUrl::parse("http://example").unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("example:80", "/"));
        let u = HttpUrl::parse("http://[::1]:80/x?y=1").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("[::1]:80", "/x?y=1")
        );
        let u = HttpUrl::parse("http://[::1]/").unwrap();
        assert_eq!(u.authority, "[::1]:80");
        assert!(HttpUrl::parse("https://x").is_err());
        assert!(HttpUrl::parse("http:///x").is_err());
    }
}
