//! Plain-HTTP GETs: [`get_status`] for `bosun probe` with a blocking socket (it runs
//! every few seconds in every container, so it starts no runtime), and [`get`] on
//! hyper for the health checks and the ECS metadata endpoint.

use std::io::{Read, Write};
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
    let left = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let (addr, mut stream) =
        crate::resolve::connect_blocking(&url.authority, timeout).map_err(|e| e.to_string())?;
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

/// GET `url` on the tokio runtime: the status code and up to `body_limit` bytes of the
/// body (0: the body is not read). Redirects are not followed. Not bounded in time:
/// callers wrap it in a timeout.
pub async fn get(url: &str, body_limit: usize) -> Result<(u16, Vec<u8>), String> {
    request(hyper::Method::GET, url, None, body_limit).await
}

/// A request with an optional JSON body; the status and up to `body_limit` bytes of
/// the response body.
pub async fn request(
    method: hyper::Method,
    url: &str,
    json: Option<String>,
    body_limit: usize,
) -> Result<(u16, Vec<u8>), String> {
    use http_body_util::BodyExt;

    let url = HttpUrl::parse(url)?;
    let stream = crate::resolve::connect(&url.authority, crate::resolve::TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .header(hyper::header::USER_AGENT, "bosun");
    if json.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let body = http_body_util::Full::new(bytes::Bytes::from(json.unwrap_or_default()));
    let request = builder.body(body).map_err(|e| e.to_string())?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let code = response.status().as_u16();
        let mut body = Vec::new();
        if body_limit > 0 {
            let mut incoming = response.into_body();
            while let Some(frame) = incoming.frame().await {
                let frame = frame.map_err(|e| e.to_string())?;
                if let Some(data) = frame.data_ref() {
                    body.extend_from_slice(data);
                    if body.len() > body_limit {
                        return Err(format!("response body over {body_limit} bytes"));
                    }
                }
            }
        }
        Ok((code, body))
    }
    .await;
    driver.abort();
    result
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
