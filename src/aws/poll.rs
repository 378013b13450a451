//! The one way a module waits on AWS beyond a single call (an image being snapshotted, a builder
//! installing, an instance starting, a volume attaching, a final snapshot): look, and until it is
//! done, sleep a delay that grows to a ceiling, within a budget. The engine's own waits (ready,
//! deleted) poll through `ResourceKind::refresh` with each kind's `Budget`.

use std::future::Future;
use std::time::{Duration, Instant};

use super::AwsError;

/// What one look found.
pub enum Look<T> {
    Done(T),
    /// Not yet: look again after the next delay.
    Again,
}

/// How a delay grows from one look to the next.
#[derive(Clone, Copy)]
pub enum Grow {
    Double,
    Add(Duration),
}

/// How often to look: the first delay, its growth, and its ceiling.
#[derive(Clone, Copy)]
pub struct Pace {
    pub first: Duration,
    pub grow: Grow,
    pub max: Duration,
}

impl Pace {
    /// The same delay every time.
    pub const fn every(delay: Duration) -> Pace {
        Pace {
            first: delay,
            grow: Grow::Add(Duration::ZERO),
            max: delay,
        }
    }
}

/// Looks until `look` is done or fails. `look` gets the time waited so far (for progress
/// messages); once that passes `budget`, the wait ends with `timeout(waited)`.
pub async fn until<T, F, Fut>(
    budget: Duration,
    pace: Pace,
    mut look: F,
    timeout: impl FnOnce(Duration) -> AwsError,
) -> Result<T, AwsError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<Look<T>, AwsError>>,
{
    let started = Instant::now();
    let mut delay = pace.first;
    loop {
        if let Look::Done(value) = look(started.elapsed()).await? {
            return Ok(value);
        }
        if started.elapsed() > budget {
            return Err(timeout(started.elapsed()));
        }
        tokio::time::sleep(delay).await;
        delay = match pace.grow {
            Grow::Double => delay * 2,
            Grow::Add(step) => delay + step,
        }
        .min(pace.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn looks_until_done_with_growing_delays_then_gives_up_at_the_budget() {
        let looks = AtomicU32::new(0);
        let doubling = Pace {
            first: 20 * MS,
            grow: Grow::Double,
            max: 300 * MS,
        };
        let started = Instant::now();
        let done = until(
            Duration::from_secs(10),
            doubling,
            |_| async {
                let n = looks.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(if n == 4 { Look::Done(n) } else { Look::Again })
            },
            |_| AwsError::other("timed out"),
        )
        .await
        .unwrap();
        assert_eq!(done, 4);
        let took = started.elapsed();
        assert!(
            took >= 140 * MS && took < 1000 * MS,
            "20 + 40 + 80 ms apart: {took:?}"
        );

        let looks = AtomicU32::new(0);
        let e = until(
            200 * MS,
            Pace {
                first: 10 * MS,
                grow: Grow::Add(10 * MS),
                max: 30 * MS,
            },
            |_| async {
                looks.fetch_add(1, Ordering::SeqCst);
                Ok(Look::<()>::Again)
            },
            |waited| AwsError::other(format!("not done after {} ms", waited.as_millis())),
        )
        .await
        .unwrap_err();
        let waited: u128 = e
            .message
            .trim_start_matches("not done after ")
            .trim_end_matches(" ms")
            .parse()
            .unwrap();
        assert!(waited > 200, "the budget is waited out: {}", e.message);
        // 10, 20, then 30 ms apart: at most 10 looks in 200 ms (fewer on a busy machine).
        assert!(looks.load(Ordering::SeqCst) <= 10);

        let e = until(
            Duration::from_secs(10),
            Pace::every(MS),
            |_| async { Err::<Look<()>, _>(AwsError::other("refused")) },
            |_| AwsError::other("timed out"),
        )
        .await
        .unwrap_err();
        assert_eq!(e.message, "refused", "a failed look ends the wait at once");
    }
}
