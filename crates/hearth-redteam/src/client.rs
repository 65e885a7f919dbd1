//! A minimal blocking HTTP/1.1 client for OpenAI-compatible servers, on `std::net`.
//!
//! Plain `http://` only (no TLS in the tree): run it against the server directly or
//! through a local TLS-terminating proxy. One connection per request
//! (`Connection: close`); bodies by `Content-Length`, chunked, or to end of stream.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::{Error, Result};

/// Where to send requests: host, port, path prefix and API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The path that `/chat/completions` and `/models` hang off, e.g. `/v1`.
    pub api_base: String,
    /// Sent as `Authorization: Bearer KEY` when set.
    pub key: Option<String>,
}

/// An HTTP response: status, headers (names lower-cased) and body text.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

impl HttpReply {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`. A path ending in `/v1` is the API base as
    /// is; any other path gets `/v1` appended (so `http://h:8080` and
    /// `http://h:8080/v1` mean the same).
    pub fn parse(url: &str, key: Option<String>) -> Result<Self> {
        let bad = |why| Error::BadUrl {
            url: url.to_string(),
            why,
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad(
                "https is not supported (no TLS client built in); use http:// or a local TLS proxy",
            ));
        } else {
            return Err(bad("expected http://host[:port][/path]"));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("port is not a number 0-65535"))?,
            ),
            _ => (authority, 80),
        };
        let path = path.trim_end_matches('/');
        let api_base = if path.ends_with("/v1") {
            path.to_string()
        } else {
            format!("{path}/v1")
        };
        Ok(Endpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            api_base,
            key: key.filter(|k| !k.is_empty()),
        })
    }

    /// `http://host:port/base` for reports (never the key).
    pub fn display_url(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.api_base)
    }

    /// Sends one request to `api_base` + `path` and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> std::io::Result<HttpReply> {
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{} resolves to nothing", self.host)))?;
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: hearth-redteam\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.api_base,
            self.host,
            self.port,
            body.len()
        );
        if let Some(k) = &self.key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        s.write_all(body.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        parse_response(&raw)
    }
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpReply> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("response ended before its headers did"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("malformed status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("malformed chunked body"))?;
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        if body.len() < n {
            return Err(bad("body shorter than its Content-Length"));
        }
        body.truncate(n);
    }
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_an_api_base() {
        let e = Endpoint::parse("http://127.0.0.1:8080", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.host.as_str(), e.port, e.api_base.as_str()),
            ("127.0.0.1", 8080, "/v1")
        );
        let e = Endpoint::parse("http://h/v1/", Some("k".into())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.port, e.api_base.as_str(), e.key.as_deref()),
            (80, "/v1", Some("k"))
        );
        let e = Endpoint::parse("http://h:1/proxy", Some(String::new()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.api_base.as_str(), e.key), ("/proxy/v1", None));
        let e = Endpoint::parse("http://[::1]:9", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.host.as_str(), e.port), ("::1", 9));
        for bad in ["https://x", "ftp://x", "http://", "http://h:99999"] {
            assert!(Endpoint::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_by_length_and_chunked() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiXX")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.status, r.body.as_str()), (200, "hi"));
        let r = parse_response(
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.status, r.body.as_str(), r.header("retry-after")),
            (429, "abcde", Some("3"))
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
    }
}
