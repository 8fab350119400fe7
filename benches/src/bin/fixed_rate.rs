//! A bounded, fixed-rate redirect load: `fixed-rate ADDR CODES_FILE RATE SECONDS
//! [CONNECTIONS]` sends `RATE` requests a second in all, spread over `CONNECTIONS`
//! keep-alive HTTP/1.1 connections (default 64), each `GET /{code}` for codes drawn in
//! turn from the file's first column, for `SECONDS` seconds, and prints what it sent
//! and got back. With a server's CPU time read around it, that is the CPU a redirect
//! costs at a given load, which a flat-out run (wrk) can't tell.
//!
//! One thread, plain sockets, no HTTP library: the load itself must cost little.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
struct Tally {
    sent: u64,
    redirects: u64,
    other: u64,
}

/// Reads one response without a body (a 302) and tells whether it was a redirect.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or_default();
            let redirect = head.starts_with("HTTP/1.1 302");
            let body = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + body {
                let mut more = [0u8; 4096];
                let n = stream.read(&mut more).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&more[..n]);
            }
            buf.drain(..end + 4 + body);
            return Ok(redirect);
        }
        let mut more = [0u8; 4096];
        let n = stream.read(&mut more).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&more[..n]);
    }
}

async fn connection(
    addr: String,
    codes: std::sync::Arc<Vec<String>>,
    first: usize,
    every: Duration,
    until: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        return tally;
    };
    let _ = stream.set_nodelay(true);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut buf = Vec::with_capacity(8192);
    let mut i = first;
    while Instant::now() < until {
        ticks.tick().await;
        let request = format!(
            "GET /{} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: fixed-rate/1 (Windows NT 10.0; Win64; x64) Chrome/120.0\r\n\r\n",
            codes[i % codes.len()]
        );
        i += 7919;
        tally.sent += 1;
        if stream.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        match read_response(&mut stream, &mut buf).await {
            Ok(true) => tally.redirects += 1,
            Ok(false) => tally.other += 1,
            Err(_) => break,
        }
    }
    tally
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: fixed-rate ADDR CODES_FILE RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let number = |i: usize, what: &str| -> u64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!(
                "fixed-rate: {what} must be a whole number, got {:?}",
                args[i]
            );
            std::process::exit(2)
        })
    };
    let (rate, seconds) = (number(3, "RATE").max(1), number(4, "SECONDS").clamp(1, 600));
    let connections = if args.len() > 5 {
        number(5, "CONNECTIONS").clamp(1, 1024)
    } else {
        64
    };
    let codes: Vec<String> = std::fs::read_to_string(&args[2])
        .unwrap_or_else(|e| {
            eprintln!("fixed-rate: {}: {e}", args[2]);
            std::process::exit(2)
        })
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    if codes.is_empty() {
        eprintln!("fixed-rate: {} holds no codes", args[2]);
        std::process::exit(2);
    }
    let codes = std::sync::Arc::new(codes);
    let every = Duration::from_secs_f64(connections as f64 / rate as f64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tallies = rt.block_on(async {
        let tasks: Vec<_> = (0..connections as usize)
            .map(|c| tokio::spawn(connection(args[1].clone(), codes.clone(), c, every, until)))
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await.unwrap_or_default());
        }
        tallies
    });
    let took = started.elapsed().as_secs_f64();
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    println!(
        "RESULT sent={} redirects={} other={} rps={:.0}",
        sum(|t| t.sent),
        sum(|t| t.redirects),
        sum(|t| t.other),
        sum(|t| t.redirects) as f64 / took
    );
}
