//! The HTTP/1.1 request handling of the metrics listener, without I/O: finding the end of
//! the request head, routing its request line (RFC 9112 §3) and building the response.

/// Maximum size of a request head (request line and header fields), in bytes. A scrape
/// request is a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Path of the metrics page.
pub const METRICS_PATH: &str = "/metrics";

/// Outcome of a request: the response the listener sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`, or `HEAD /metrics` when `head` is true.
    Metrics {
        /// True for `HEAD`: the response has the headers of `GET` and no body.
        head: bool,
    },
    /// 400: the request line is not `METHOD SP TARGET SP HTTP/1.x`.
    BadRequest,
    /// 404: a path other than [`METRICS_PATH`].
    NotFound,
    /// 405: a method other than `GET` or `HEAD` on [`METRICS_PATH`].
    MethodNotAllowed,
    /// 408: the request head did not arrive in time.
    Timeout,
    /// 431: the request head is longer than [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// 505: an HTTP version other than 1.0 or 1.1.
    VersionNotSupported,
}

/// Returns the length of the request head in `buffer`, including the empty line that ends
/// it, or `None` while it is incomplete. A bare LF ends a line too (RFC 9112 §2.2).
pub fn head_length(buffer: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (index, &byte) in buffer.iter().enumerate() {
        if byte != b'\n' {
            continue;
        }
        let line = &buffer[line_start..index];
        if line.is_empty() || line == b"\r" {
            return Some(index + 1);
        }
        line_start = index + 1;
    }
    None
}

/// Routes a complete request head by its request line. The response does not depend on
/// the header fields, so they are not parsed.
pub fn route(head: &[u8]) -> Route {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head[..line_end].strip_suffix(b"\r").unwrap_or(&head[..line_end]);
    let Ok(line) = std::str::from_utf8(line) else { return Route::BadRequest };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || !target.starts_with('/') {
        return Route::BadRequest;
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        _ if version.starts_with("HTTP/") && version.len() > 5 => return Route::VersionNotSupported,
        _ => return Route::BadRequest,
    }
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    match (path == METRICS_PATH, method) {
        (false, _) => Route::NotFound,
        (true, "GET") => Route::Metrics { head: false },
        (true, "HEAD") => Route::Metrics { head: true },
        (true, _) => Route::MethodNotAllowed,
    }
}

/// Returns the whole response to `route`; `body` renders the metrics page. Every response
/// closes the connection.
pub fn response(route: Route, body: impl FnOnce() -> String) -> Vec<u8> {
    let (status, content_type, text, send_body) = match route {
        Route::Metrics { head } => (200, super::render::CONTENT_TYPE, body(), !head),
        Route::BadRequest => (400, PLAIN, "invalid request line: expected GET /metrics HTTP/1.1\n".to_owned(), true),
        Route::NotFound => (404, PLAIN, format!("not found: the metrics are at {METRICS_PATH}\n"), true),
        Route::MethodNotAllowed => (405, PLAIN, format!("method not allowed: use GET or HEAD on {METRICS_PATH}\n"), true),
        Route::Timeout => (408, PLAIN, "request timed out\n".to_owned(), true),
        Route::TooLarge => (431, PLAIN, format!("request head larger than {MAX_REQUEST_BYTES} bytes\n"), true),
        Route::VersionNotSupported => (505, PLAIN, "HTTP version not supported: use HTTP/1.1 or HTTP/1.0\n".to_owned(), true),
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n", reason(status), text.len());
    if route == Route::MethodNotAllowed {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if send_body {
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "HTTP Version Not Supported",
    }
}
