//! Nagle's algorithm off on the store's TCP connections.
//!
//! sqlx 0.9.0 leaves it on (transact-rs/sqlx#4335, fixed upstream after that release):
//! a statement whose parameters span more than ~16 KB then waits about 40 ms for
//! PostgreSQL's delayed ACK, which would cap a batch of clicks written in a few large
//! statements at a few batches a second. Until a sqlx release sets `TCP_NODELAY`
//! itself, each new connection asks the server for its own client port, finds the
//! socket with that port among the process's descriptors (a duplicate of it, through
//! `pidfd_getfd`, so no unsafe code touches a descriptor sqlx owns) and sets the option.
//! Where that cannot be done (not Linux, a proxy or NAT in between, `pidfd_getfd`
//! refused), the connection keeps Nagle and the store keeps its statements small.

use sqlx::{PgConnection, Row};

/// How a connection reaches the server, as far as statement size is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A Unix socket, or TCP with Nagle's algorithm off: any statement size is fine.
    NoDelay,
    /// TCP with Nagle's algorithm on: statements stay under ~16 KB.
    Nagle,
}

/// Turns Nagle's algorithm off on `conn`'s socket where it can.
pub(crate) async fn disable_nagle(conn: &mut PgConnection) -> Transport {
    let ports = sqlx::query("SELECT inet_client_port() AS client, inet_server_port() AS server")
        .fetch_one(conn)
        .await
        .ok()
        .and_then(|row| {
            let client: Option<i32> = row.try_get("client").ok()?;
            let server: Option<i32> = row.try_get("server").ok()?;
            Some((client, server))
        });
    match ports {
        // Both NULL: a Unix socket, where Nagle's algorithm does not exist.
        Some((None, None)) => Transport::NoDelay,
        Some((Some(client), Some(server))) => {
            match (u16::try_from(client), u16::try_from(server)) {
                (Ok(client), Ok(server)) if socket::set_nodelay(client, server) => {
                    Transport::NoDelay
                }
                _ => Transport::Nagle,
            }
        }
        _ => Transport::Nagle,
    }
}

#[cfg(target_os = "linux")]
pub(crate) mod socket {
    use rustix::net::{getpeername, getsockname, sockopt};
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
    use std::net::SocketAddr;
    use std::os::fd::OwnedFd;

    /// Sets `TCP_NODELAY` on this process's TCP socket from local port `local` to
    /// remote port `remote`; false when there is none or the kernel refuses.
    pub(crate) fn set_nodelay(local: u16, remote: u16) -> bool {
        find(local, remote).is_some_and(|fd| sockopt::set_tcp_nodelay(&fd, true).is_ok())
    }

    /// A duplicate of the socket from port `local` to port `remote`.
    pub(crate) fn find(local: u16, remote: u16) -> Option<OwnedFd> {
        let me = pidfd_open(getpid(), PidfdFlags::empty()).ok()?;
        std::fs::read_dir("/proc/self/fd")
            .ok()?
            .flatten()
            .filter(|entry| {
                std::fs::read_link(entry.path())
                    .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
            })
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|fd| pidfd_getfd(&me, fd, PidfdGetfdFlags::empty()).ok())
            .find(|fd| {
                let port = |addr: Option<rustix::net::SocketAddrAny>| {
                    addr.and_then(|a| SocketAddr::try_from(a).ok())
                        .map(|a| a.port())
                };
                port(getsockname(fd).ok()) == Some(local)
                    && port(getpeername(fd).ok().flatten()) == Some(remote)
            })
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) mod socket {
    pub(crate) fn set_nodelay(_local: u16, _remote: u16) -> bool {
        false
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::socket;
    use sqlx::{Connection, PgConnection, Row};

    async fn ports(conn: &mut PgConnection) -> Option<(u16, u16)> {
        let row = sqlx::query("SELECT inet_client_port() AS client, inet_server_port() AS server")
            .fetch_one(conn)
            .await
            .unwrap();
        let client: Option<i32> = row.try_get("client").unwrap();
        let server: Option<i32> = row.try_get("server").unwrap();
        Some((u16::try_from(client?).ok()?, u16::try_from(server?).ok()?))
    }

    #[tokio::test]
    async fn the_stores_tcp_connections_have_nagle_off() {
        let url = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => url,
            _ if std::env::var_os("CI").is_some() => {
                panic!("CI is set but TEST_DATABASE_URL is not")
            }
            _ => return eprintln!("skipped: set TEST_DATABASE_URL=postgres://… to run"),
        };
        // A connection of its own keeps sqlx's default, so the check below can fail.
        let mut plain = PgConnection::connect(&url).await.unwrap();
        let Some((client, server)) = ports(&mut plain).await else {
            return eprintln!("skipped: TEST_DATABASE_URL is not a TCP address");
        };
        let fd = socket::find(client, server).expect("the plain connection's socket");
        assert!(!rustix::net::sockopt::tcp_nodelay(&fd).unwrap());

        let schema = format!(
            "hoplink_nodelay_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let settings = crate::PgSettings {
            schema: Some(schema.clone()),
            ..crate::PgSettings::default()
        };
        let store = crate::PgStore::connect_with(&url, settings).await.unwrap();
        let mut pooled = store.pool().acquire().await.unwrap();
        let (client, server) = ports(&mut pooled).await.unwrap();
        let fd = socket::find(client, server).expect("the pooled connection's socket");
        assert!(rustix::net::sockopt::tcp_nodelay(&fd).unwrap());
        assert!(!store.nagle.load(std::sync::atomic::Ordering::Relaxed));
        drop(pooled);
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut plain)
            .await
            .unwrap();
    }
}
