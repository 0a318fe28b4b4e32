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

    pub fn get(&self, address: &Address) -> Option<&Entry> {
        self.entries.get(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::ErrorPolicy;

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
