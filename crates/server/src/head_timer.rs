//! The deadline for a request head (`HEADER_READ_TIMEOUT`) on an HTTP/1 connection,
//! kept without a timer per request.
//!
//! hyper takes a new sleep from its timer every time a connection starts waiting for a
//! request head, polls it while the head is incomplete, and drops it when the head is
//! in. With tokio's timer, each of those sleeps is put in the runtime's timer wheel and
//! taken out again (a lock each time), and each holds the runtime's handle, a reference
//! count every core writes: on a keep-alive connection, all of that once per request.
//!
//! [`HeadTimer`] belongs to one connection. Its sleeps only compare their deadline with
//! the time and share the connection's one tokio timer, the alarm. The alarm is set for
//! the deadline of the first wait and left alone while it is still ahead of the wait
//! being polled; when it goes off for a wait that is over, it is moved to the current
//! wait's deadline. A busy connection so touches the timer wheel about once per
//! timeout, not once per request, and a silent, slow or idle one is closed at its
//! deadline exactly as before.

use hyper::rt::{Sleep, Timer};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// One connection's timer for hyper (give each connection its own).
#[derive(Clone, Default)]
pub(crate) struct HeadTimer {
    alarm: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    // tokio's clock (the system's, unless a test has paused it), which the alarm keeps.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(HeadSleep {
            deadline: deadline.into(),
            alarm: self.alarm.clone(),
        })
    }
}

/// A wait for a request head, until `deadline`.
struct HeadSleep {
    deadline: tokio::time::Instant,
    alarm: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
}

impl Sleep for HeadSleep {}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        // Only this connection's task takes the lock, so it is never contended; a
        // poisoned one (a panic while it was held) ends the wait rather than the process.
        let Ok(mut alarm) = self.alarm.lock() else {
            return Poll::Ready(());
        };
        let alarm = alarm.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if alarm.deadline() > deadline {
            alarm.as_mut().reset(deadline);
        }
        loop {
            match alarm.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if alarm.deadline() >= deadline => return Poll::Ready(()),
                // It went off for an earlier wait, one that is over.
                Poll::Ready(()) => alarm.as_mut().reset(deadline),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once(sleep: &mut Pin<Box<dyn Sleep>>) -> Poll<()> {
        let waker = std::task::Waker::noop();
        sleep.as_mut().poll(&mut Context::from_waker(waker))
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_its_own_deadline_whatever_the_earlier_waits_were() {
        let timer = HeadTimer::default();
        let timeout = Duration::from_secs(10);

        // A first wait, answered after a second: the alarm is set for its deadline.
        let mut first = timer.sleep(timeout);
        assert!(poll_once(&mut first).is_pending());
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(first);

        // The next wait starts later, so it must outlast the first one's deadline.
        tokio::time::advance(Duration::from_secs(5)).await;
        let mut second = timer.sleep(timeout);
        assert!(poll_once(&mut second).is_pending());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(
            poll_once(&mut second).is_pending(),
            "the first wait's deadline has passed, not this one's"
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(poll_once(&mut second).is_pending());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            poll_once(&mut second).is_ready(),
            "its own deadline has come"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_wait_moves_the_alarm_earlier() {
        let timer = HeadTimer::default();
        let mut long = timer.sleep(Duration::from_secs(60));
        assert!(poll_once(&mut long).is_pending());
        drop(long);
        let mut short = timer.sleep_until(timer.now() + Duration::from_secs(2));
        assert!(poll_once(&mut short).is_pending());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(poll_once(&mut short).is_ready());
    }
}
