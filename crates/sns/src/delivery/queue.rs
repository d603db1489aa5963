//! The in-memory schedule of the outbox: which deliveries are due when, which are being attempted,
//! and how many unfinished deliveries each stored message still has (so the message row is deleted
//! with its last delivery). The outbox rows in the store are the truth; this is rebuilt from them
//! on start.

use std::collections::{BTreeSet, HashMap, HashSet};

use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Default)]
struct Queue {
    order: BTreeSet<(i64, String)>,
    due: HashMap<String, i64>,
    in_flight: HashSet<String>,
    message_of: HashMap<String, String>,
    refs: HashMap<String, usize>,
}

/// What [`Schedule::pop_due`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop {
    /// Attempt this delivery now.
    Ready(String),
    /// Nothing due; the earliest is due at this time (ms), if any.
    Wait(Option<i64>),
}

/// The schedule, shared by the publishing side and the dispatcher loop.
#[derive(Default)]
pub struct Schedule {
    queue: Mutex<Queue>,
    notify: Notify,
}

impl Schedule {
    pub fn new() -> Self {
        Schedule::default()
    }

    /// Add delivery `id`, due at `due_ms`, that needs stored message `message_id` (if any). Known
    /// ids are left alone, so loading the outbox and publishing may overlap.
    pub fn enqueue(&self, id: &str, due_ms: i64, message_id: Option<&str>) {
        self.enqueue_many([(id, due_ms, message_id)]);
    }

    /// Add several deliveries at once. All deliveries of one message must be added in one call, so
    /// none of them can finish (and release the message) before the others are counted.
    pub fn enqueue_many<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, i64, Option<&'a str>)>,
    ) {
        {
            let mut q = self.queue.lock();
            for (id, due_ms, message_id) in items {
                if q.due.contains_key(id) || q.in_flight.contains(id) {
                    continue;
                }
                q.order.insert((due_ms, id.to_string()));
                q.due.insert(id.to_string(), due_ms);
                if let Some(m) = message_id {
                    q.message_of.insert(id.to_string(), m.to_string());
                    *q.refs.entry(m.to_string()).or_default() += 1;
                }
            }
        }
        self.notify.notify_one();
    }

    /// Take the earliest delivery due at or before `now_ms`, marking it in flight.
    pub fn pop_due(&self, now_ms: i64) -> Pop {
        let mut q = self.queue.lock();
        let Some((due, id)) = q.order.first().cloned() else {
            return Pop::Wait(None);
        };
        if due > now_ms {
            return Pop::Wait(Some(due));
        }
        q.order.remove(&(due, id.clone()));
        q.due.remove(&id);
        q.in_flight.insert(id.clone());
        Pop::Ready(id)
    }

    /// An in-flight delivery will be retried at `due_ms`.
    pub fn reschedule(&self, id: &str, due_ms: i64) {
        {
            let mut q = self.queue.lock();
            q.in_flight.remove(id);
            q.order.insert((due_ms, id.to_string()));
            q.due.insert(id.to_string(), due_ms);
        }
        self.notify.notify_one();
    }

    /// An in-flight delivery is finished (delivered or given up). Returns the id of its stored
    /// message when this was the message's last delivery.
    pub fn finish(&self, id: &str) -> Option<String> {
        let mut q = self.queue.lock();
        q.in_flight.remove(id);
        let message = q.message_of.remove(id)?;
        let remaining = q.refs.get_mut(&message).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if remaining == Some(0) {
            q.refs.remove(&message);
            Some(message)
        } else {
            None
        }
    }

    /// Whether any delivery still needs stored message `message_id`.
    pub fn message_referenced(&self, message_id: &str) -> bool {
        self.queue.lock().refs.contains_key(message_id)
    }

    /// Deliveries scheduled or in flight.
    pub fn len(&self) -> usize {
        let q = self.queue.lock();
        q.order.len() + q.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget everything (after the store was wiped).
    pub fn clear(&self) {
        *self.queue.lock() = Queue::default();
    }

    /// Wait until something is enqueued or rescheduled (or a stored wake-up is pending).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_due_order_and_waits_for_the_future() {
        let s = Schedule::new();
        s.enqueue("b", 20, None);
        s.enqueue("a", 10, None);
        s.enqueue("a", 5, None); // already known: ignored
        assert_eq!(s.pop_due(9), Pop::Wait(Some(10)));
        assert_eq!(s.pop_due(100), Pop::Ready("a".into()));
        assert_eq!(s.pop_due(100), Pop::Ready("b".into()));
        assert_eq!(s.pop_due(100), Pop::Wait(None));
        assert_eq!(s.len(), 2, "both are in flight");
        s.enqueue("a", 1, None); // in flight: ignored
        assert_eq!(s.pop_due(100), Pop::Wait(None));
        s.reschedule("a", 50);
        assert_eq!(s.pop_due(49), Pop::Wait(Some(50)));
        assert_eq!(s.pop_due(50), Pop::Ready("a".into()));
    }

    #[test]
    fn last_delivery_releases_the_message() {
        let s = Schedule::new();
        s.enqueue("d1", 0, Some("m"));
        s.enqueue("d2", 0, Some("m"));
        assert!(s.message_referenced("m"));
        let _ = s.pop_due(0);
        let _ = s.pop_due(0);
        assert_eq!(s.finish("d1"), None);
        assert_eq!(s.finish("d2"), Some("m".into()));
        assert!(!s.message_referenced("m"));
        assert!(s.is_empty());
    }

    #[test]
    fn a_batch_is_counted_before_any_of_it_can_finish() {
        let s = Schedule::new();
        s.enqueue_many([
            ("d1", 0, Some("m")),
            ("d2", 0, Some("m")),
            ("d1", 0, Some("m")),
        ]);
        assert_eq!(s.len(), 2, "duplicates within the batch are ignored");
        let _ = s.pop_due(0);
        assert_eq!(s.finish("d1"), None, "d2 still needs the message");
        let _ = s.pop_due(0);
        assert_eq!(s.finish("d2"), Some("m".into()));
    }
}
