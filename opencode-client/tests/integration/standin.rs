//! A small stand-in for the OpenCode server on 127.0.0.1: it records every request and answers
//! each with a canned reply picked by a route function.
//!
//! It speaks just enough HTTP/1.1 for the client: one request per connection
//! (`Connection: close`), bodies by `Content-Length`, and chunked answers for streams.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// How the stand-in answers a request.
pub enum Reply {
    /// A status and a JSON body.
    Json(u16, String),
    /// A status and no body.
    Empty(u16),
    /// A chunked `text/event-stream`: the first chunk at once, the others once `gate` is
    /// notified.
    Stream {
        chunks: Vec<String>,
        gate: Arc<Notify>,
    },
    /// Never answers.
    Hang,
}

type Route = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A running stand-in server.
pub struct StandIn {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl StandIn {
    /// Starts a stand-in answering with `route`.
    pub async fn start(route: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let recorded = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, route.clone(), recorded.clone()));
            }
        });
        StandIn { base, requests }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(stream: TcpStream, route: Arc<Route>, requests: Arc<Mutex<Vec<Recorded>>>) {
    let mut stream = BufReader::new(stream);
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    requests.lock().unwrap().push(request.clone());
    let reply = route(&request);
    let _ = write_reply(stream.get_mut(), reply).await;
}

async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    stream.read_line(&mut line).await.ok()?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let (mut authorization, mut length) = (None, 0);
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_owned()),
            "content-length" => length = value.trim().parse().ok()?,
            _ => {}
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    let body = String::from_utf8(body).ok()?;
    Some(Recorded {
        method,
        path,
        authorization,
        body,
    })
}

async fn write_reply(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Json(status, body) => {
            let head = head(
                status,
                "application/json",
                &format!("Content-Length: {}", body.len()),
            );
            stream.write_all(format!("{head}{body}").as_bytes()).await
        }
        Reply::Empty(status) => {
            stream
                .write_all(head(status, "text/plain", "Content-Length: 0").as_bytes())
                .await
        }
        Reply::Stream { chunks, gate } => write_stream(stream, chunks, gate).await,
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
    }
}

async fn write_stream(
    stream: &mut TcpStream,
    chunks: Vec<String>,
    gate: Arc<Notify>,
) -> std::io::Result<()> {
    let head = head(200, "text/event-stream", "Transfer-Encoding: chunked");
    stream.write_all(head.as_bytes()).await?;
    for (index, chunk) in chunks.iter().enumerate() {
        if index == 1 {
            gate.notified().await;
        }
        stream
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.flush().await?;
    }
    stream.write_all(b"0\r\n\r\n").await
}

fn head(status: u16, content_type: &str, framing: &str) -> String {
    format!(
        "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\n{framing}\r\n\
         Connection: close\r\n\r\n"
    )
}
