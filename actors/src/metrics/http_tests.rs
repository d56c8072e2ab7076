use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::{MetricsServer, PageSource, MAX_REQUEST_BYTES};
use super::http_request::{head_length, route, Route};

#[test]
fn request_lines_routed() {
    let cases: [(&[u8], Route); 12] = [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Route::Metrics { head: false }),
        (b"GET /metrics?name=x HTTP/1.0\r\n\r\n", Route::Metrics { head: false }),
        (b"HEAD /metrics HTTP/1.1\r\n\r\n", Route::Metrics { head: true }),
        (b"GET /metrics HTTP/1.1\n\n", Route::Metrics { head: false }),
        (b"POST /metrics HTTP/1.1\r\n\r\n", Route::MethodNotAllowed),
        (b"GET / HTTP/1.1\r\n\r\n", Route::NotFound),
        (b"GET /metrics/ HTTP/1.1\r\n\r\n", Route::NotFound),
        (b"GET /metrics HTTP/2.0\r\n\r\n", Route::VersionNotSupported),
        (b"GET /metrics\r\n\r\n", Route::BadRequest),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
        (b"get /metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
        (b"GET metrics HTTP/1.1\r\n\r\n", Route::BadRequest),
    ];
    for (request, expected) in cases {
        assert_eq!(route(request), expected, "{:?}", String::from_utf8_lossy(request));
    }
    assert_eq!(route(b"GET /\xff HTTP/1.1\r\n\r\n"), Route::BadRequest);
}

#[test]
fn head_end_found() {
    assert_eq!(head_length(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    assert_eq!(head_length(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
    assert_eq!(head_length(b"GET / HTTP/1.1\n\n"), Some(16));
}

async fn start() -> MetricsServer {
    let source: PageSource = Arc::new(|| "# TYPE imsitrace_test gauge\nimsitrace_test 1\n".to_owned());
    let address: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    MetricsServer::start_with(address, source).await.expect("listener on a free port")
}

/// Sends `request`, then returns everything the server wrote until it closed the connection.
async fn exchange(server: &MetricsServer, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.address()).await.expect("connect to the listener");
    // The server may respond and close before it read everything, e.g. an oversize request.
    let _ = stream.write_all(request).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn metrics_page_served() {
    let server = start().await;
    let response = exchange(&server, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{response}");
    assert!(response.contains("Content-Length: 45\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n# TYPE imsitrace_test gauge\nimsitrace_test 1\n"), "{response}");
}

#[tokio::test]
async fn head_request_has_no_body() {
    let server = start().await;
    let response = exchange(&server, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("Content-Length: 45\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\n"), "{response}");
}

#[tokio::test]
async fn wrong_path_is_404() {
    let server = start().await;
    let response = exchange(&server, b"GET /status HTTP/1.1\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 404 Not Found\r\n"), "{response}");
}

#[tokio::test]
async fn wrong_method_is_405() {
    let server = start().await;
    let response = exchange(&server, b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{response}");
    assert!(response.contains("Allow: GET, HEAD\r\n"), "{response}");
}

#[tokio::test]
async fn bad_request_line_is_400() {
    let server = start().await;
    let response = exchange(&server, b"hello\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
}

#[tokio::test]
async fn oversize_head_is_431() {
    let server = start().await;
    let mut request = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', MAX_REQUEST_BYTES));
    request.extend_from_slice(b"\r\n\r\n");
    let response = exchange(&server, &request).await;
    assert!(response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{response}");
}

#[tokio::test]
async fn oversize_without_end_is_431() {
    let server = start().await;
    let request = vec![b'a'; MAX_REQUEST_BYTES + 10];
    let response = exchange(&server, &request).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
}

#[tokio::test]
async fn closed_before_head_gets_nothing() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address()).await.expect("connect to the listener");
    stream.write_all(b"GET /metr").await.expect("partial request written");
    stream.shutdown().await.expect("write side closed");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    assert!(response.is_empty(), "{}", String::from_utf8_lossy(&response));
}

#[tokio::test]
async fn silent_client_times_out() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address()).await.expect("connect to the listener");
    stream.write_all(b"GET /metrics HTTP/1.1\r\n").await.expect("partial request written");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{response}");
}

#[tokio::test]
async fn bind_error_names_address() {
    let server = start().await;
    let source: PageSource = Arc::new(String::new);
    let error = MetricsServer::start_with(server.address(), source).await.err().expect("the port is taken");
    assert!(error.contains(&server.address().to_string()), "{error}");
    assert!(error.contains("[metrics] listen"), "{error}");
}
