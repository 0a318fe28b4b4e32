//! Per-object backoff for the loop (Crossplane's managed reconciler, per object; kube-rs has none per
//! object): an object whose change failed waits out its own exponential, jittered backoff before the loop
//! tries it again, while every other object converges at each pass; a success clears it. Pure: time is
//! what the caller says it is (`now`, the loop's clock since it started).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Class;
use crate::resource::Address;

/// One object's failures in a row, and when it may be tried again.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub failures: u32,
    pub class: Class,
    pub until: Duration,
}

/// The objects in backoff.
#[derive(Debug, Clone)]
pub struct Backoffs {
    policy: super::ErrorPolicy,
    entries: BTreeMap<Address, Entry>,
    jitter: super::Jitter,
}

impl Backoffs {
    /// Backoff from `policy.base`, doubling to `policy.max`, on failures of any class: a change that failed
    /// for a reason retrying cannot fix waits as long as one that was throttled, and the pass does not.
    pub fn new(policy: super::ErrorPolicy, seed: u64) -> Backoffs {
        Backoffs { policy, entries: BTreeMap::new(), jitter: super::Jitter::new(seed) }
    }

    /// A change of `address` failed with `class` at `now`: its next try waits out its backoff. Returns the
    /// wait.
    pub fn failed(&mut self, address: &Address, class: Class, now: Duration) -> Duration {
        let failures = self.entries.get(address).map_or(0, |e| e.failures) + 1;
        let wait = self.policy.backoff(failures, self.jitter.sample());
        self.entries.insert(address.clone(), Entry { failures, class, until: now + wait });
        wait
    }

    /// A change of `address` completed: it is tried at every pass again.
    pub fn succeeded(&mut self, address: &Address) {
        self.entries.remove(address);
    }

    /// Objects still waiting at `now`, each with why: what the pass holds back.
    pub fn waiting(&self, now: Duration) -> BTreeMap<Address, String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.until > now)
            .map(|(a, e)| {
                let left = (e.until - now).as_secs_f64();
                (a.clone(), format!("in backoff after {} failure(s) ({}): next try in {left:.1}s", e.failures, e.class))
            })
            .collect()
    }

    /// How long until the first object in backoff may be tried again, if any waits.
    pub fn next_due(&self, now: Duration) -> Option<Duration> {
        self.entries.values().filter(|e| e.until > now).map(|e| e.until - now).min()
    }

    /// The backoff step `address` is on: its wait without jitter, which stops growing at the cap.
    pub fn step(&self, address: &Address) -> Option<Duration> {
        self.entries.get(address).map(|e| self.policy.backoff(e.failures, 0.0))
    }

    /// The objects in backoff (waiting or due).
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.entries.keys()
    }

    pub fn get(&self, address: &Address) -> Option<&Entry> {
        self.entries.get(address)
    }
}

/// `reconcile_every`: objects the loop acts on at most so often. An object is due at the first pass, then
/// again once its period has passed since the pass that last reconciled it (found it converged, or applied
/// its change); until then a change of it is held back, and found drift waits. A failed or held object
/// stays due (its backoff or its conflict decides). Objects without a period are due at every pass.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    every: BTreeMap<Address, Duration>,
    last: BTreeMap<Address, Duration>,
}

impl Schedule {
    pub fn new(every: BTreeMap<Address, Duration>) -> Schedule {
        Schedule { every, last: BTreeMap::new() }
    }

    fn due_at(&self, address: &Address) -> Option<Duration> {
        Some(*self.last.get(address)? + *self.every.get(address)?)
    }

    /// Objects not due at `now`, each with why: what the pass holds back.
    pub fn not_due(&self, now: Duration) -> BTreeMap<Address, String> {
        self.every
            .iter()
            .filter_map(|(a, every)| {
                let due = self.due_at(a).filter(|due| *due > now)?;
                let left = crate::lock::ago((due - now).as_secs());
                Some((a.clone(), format!("reconcile_every {}: next in {left}", crate::lock::ago(every.as_secs()))))
            })
            .collect()
    }

    /// The pass at `now` reconciled these objects: those with a period, due at `now`, are next due a period
    /// later.
    pub fn reconciled<'a>(&mut self, addresses: impl IntoIterator<Item = &'a Address>, now: Duration) {
        for a in addresses {
            if self.every.contains_key(a) && self.due_at(a).is_none_or(|due| due <= now) {
                self.last.insert(a.clone(), now);
            }
        }
    }

    /// How long until the next object with a period is due, once reconciled.
    pub fn next_due(&self, now: Duration) -> Option<Duration> {
        self.every.keys().filter_map(|a| self.due_at(a)).filter(|due| *due > now).map(|due| due - now).min()
    }

    pub fn is_empty(&self) -> bool {
        self.every.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ErrorPolicy;

    #[test]
    fn an_object_with_a_period_is_due_at_the_first_pass_then_once_per_period() {
        let db: Address = "load_balancer.shared".parse().unwrap();
        let web: Address = "security_group.web".parse().unwrap();
        let mut s = Schedule::new([(db.clone(), Duration::from_secs(3600))].into());
        let min = |m: u64| Duration::from_secs(60 * m);
        assert!(s.not_due(min(0)).is_empty(), "due at the first pass");
        assert_eq!(s.next_due(min(0)), None);
        s.reconciled([&db, &web], min(0));
        assert_eq!(s.not_due(min(5))[&db], "reconcile_every 1h: next in 55m");
        assert_eq!(s.next_due(min(5)), Some(min(55)));
        // A pass while it is not due reconciles nothing of it: its period runs from the last reconcile.
        s.reconciled([&db], min(30));
        assert_eq!(s.next_due(min(30)), Some(min(30)));
        assert!(s.not_due(min(60)).is_empty(), "due again after its period");
        s.reconciled([&db], min(61));
        assert_eq!(s.next_due(min(61)), Some(min(60)));
        assert!(!s.not_due(min(61)).contains_key(&web), "objects without a period are always due");
    }

    fn policy() -> ErrorPolicy {
        ErrorPolicy { base: Duration::from_secs(1), max: Duration::from_secs(60), interval: Duration::from_secs(300) }
    }

    #[test]
    fn each_failure_doubles_the_objects_wait_up_to_the_cap_and_a_success_clears_it() {
        let mut b = Backoffs::new(policy(), 7);
        let a: Address = "load_balancer.acme".parse().unwrap();
        let other: Address = "load_balancer.shared".parse().unwrap();
        let mut now = Duration::ZERO;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let w = b.failed(&a, Class::Throttled, now);
            assert_eq!(b.next_due(now), Some(w));
            assert!(b.waiting(now).contains_key(&a) && !b.waiting(now).contains_key(&other), "only its own object waits");
            now += w;
            assert!(b.waiting(now).is_empty(), "due again once its wait is over");
            waits.push(w);
        }
        // 1, 2, 4, ... s, less up to 20% jitter, capped at 60 s.
        for (i, w) in waits.iter().enumerate() {
            let full = Duration::from_secs(1 << i).min(Duration::from_secs(60));
            assert!(*w <= full && *w >= full.mul_f64(0.8), "failure {}: {w:?}", i + 1);
        }
        b.succeeded(&a);
        assert!(b.get(&a).is_none() && b.next_due(now).is_none());
        assert!(b.failed(&a, Class::Invalid, now) <= Duration::from_secs(1), "it starts over");
    }
}
