//! [`LoginLimiter`]: password attempts counted per account (canonical username) and
//! per client address, each within a fixed window.
//!
//! An attempt is *reserved* on both keys before the password is checked, so a
//! parallel burst cannot pass the check before its failures are counted. A success
//! clears its own account's counter and gives back only its own reservation on the
//! address; it never touches another key. The table holds at most `max_keys`
//! entries: expired ones go first, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Limits of a [`LoginLimiter`].
#[derive(Debug, Clone)]
pub struct LimiterConfig {
    /// Attempts per account per window (reserved attempts count until they succeed).
    pub account_max: u32,
    /// Attempts per client address per window.
    pub address_max: u32,
    /// The window.
    pub window: Duration,
    /// Most keys kept; beyond, expired and then the oldest entries are dropped.
    pub max_keys: usize,
    /// Proxies whose `X-Forwarded-For` names the client (see [`super::ClientAddr`]).
    pub trusted_proxies: Vec<super::Cidr>,
    /// Accounts one client address may register per `register_window` (0: no limit).
    pub register_max: u32,
    /// The window of `register_max`.
    pub register_window: Duration,
    /// Who may create accounts.
    pub registration: Registration,
}

/// Who may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registration {
    /// Anyone, through `POST /auth/register` (counted per client address).
    #[default]
    Open,
    /// Only admins, through `POST /api/users`.
    Closed,
}

impl std::str::FromStr for Registration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "open" => Ok(Registration::Open),
            "closed" => Ok(Registration::Closed),
            _ => Err(format!("{s:?}: use open or closed")),
        }
    }
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            account_max: 5,
            address_max: 20,
            window: Duration::from_secs(300),
            max_keys: 20_000,
            trusted_proxies: Vec::new(),
            register_max: 10,
            register_window: Duration::from_secs(3600),
            registration: Registration::Open,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    count: u32,
    since: Instant,
}

/// Attempt counters per account and per address.
pub struct LoginLimiter {
    config: LimiterConfig,
    slots: Mutex<HashMap<String, Slot>>,
}

/// A reserved attempt: counted as a failure unless [`Attempt::succeeded`] or
/// [`Attempt::refund`] says otherwise (an attempt whose request was dropped stays
/// counted).
#[must_use = "an attempt is a failure unless settled"]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    account: (String, Instant),
    address: (String, Instant),
}

impl LoginLimiter {
    /// A limiter with the given limits.
    pub fn new(config: LimiterConfig) -> Self {
        LoginLimiter {
            config,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves an attempt on the account `canonical_username` from `client`, or
    /// the time to wait when either key has used its attempts.
    pub fn reserve(&self, canonical_username: &str, client: IpAddr) -> Result<Attempt<'_>, u64> {
        let account = format!("a:{canonical_username}");
        let address = format!("ip:{}", address_key(client));
        let mut slots = self.lock();
        let window = self.config.window;
        let wait = [
            self.wait(&slots, &account, self.config.account_max, window),
            self.wait(&slots, &address, self.config.address_max, window),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        let account_since = self.count(&mut slots, &account, window);
        let address_since = self.count(&mut slots, &address, window);
        Ok(Attempt {
            limiter: self,
            account: (account, account_since),
            address: (address, address_since),
        })
    }

    /// Counts a registration from `client`, or the seconds to wait when the address
    /// has registered `register_max` accounts within `register_window`. Every
    /// attempt that reaches this point counts, taken names included.
    pub fn reserve_registration(&self, client: IpAddr) -> Result<(), u64> {
        if self.config.register_max == 0 {
            return Ok(());
        }
        let key = format!("reg:{}", address_key(client));
        let window = self.config.register_window;
        let mut slots = self.lock();
        if let Some(wait) = self.wait(&slots, &key, self.config.register_max, window) {
            return Err(wait);
        }
        self.count(&mut slots, &key, window);
        Ok(())
    }

    /// Who may create accounts.
    pub fn registration(&self) -> Registration {
        self.config.registration
    }

    /// The proxies trusted to name the client.
    pub fn trusted_proxies(&self) -> &[super::Cidr] {
        &self.config.trusted_proxies
    }

    /// How many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding the lock cannot leave a slot half-written.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds left when `key` is at `max` within its `window`.
    fn wait(
        &self,
        slots: &HashMap<String, Slot>,
        key: &str,
        max: u32,
        window: Duration,
    ) -> Option<u64> {
        let slot = slots.get(key)?;
        let left = window.checked_sub(slot.since.elapsed())?;
        (slot.count >= max).then(|| left.as_secs().max(1))
    }

    /// Adds one to `key` (a new window when the last one has passed); returns the
    /// start of the window counted in.
    fn count(&self, slots: &mut HashMap<String, Slot>, key: &str, window: Duration) -> Instant {
        if !slots.contains_key(key) {
            self.make_room(slots);
        }
        let now = Instant::now();
        let slot = slots.entry(key.to_string()).or_insert(Slot {
            count: 0,
            since: now,
        });
        if slot.since.elapsed() >= window {
            *slot = Slot {
                count: 0,
                since: now,
            };
        }
        slot.count += 1;
        slot.since
    }

    /// Keeps the table under `max_keys`: drops expired entries, then the oldest
    /// eighth when that is not enough.
    fn make_room(&self, slots: &mut HashMap<String, Slot>) {
        let max = self.config.max_keys.max(1);
        if slots.len() < max {
            return;
        }
        let window = self.config.window.max(self.config.register_window);
        slots.retain(|_, s| s.since.elapsed() < window);
        if slots.len() < max {
            return;
        }
        let mut ages: Vec<(Instant, String)> =
            slots.iter().map(|(k, s)| (s.since, k.clone())).collect();
        let evict = (max / 8).max(1).min(ages.len());
        ages.select_nth_unstable_by_key(evict - 1, |(since, _)| *since);
        for (_, key) in ages.into_iter().take(evict) {
            slots.remove(&key);
        }
    }

    /// Takes one reservation back from `key` if its window is still the one counted in.
    fn give_back(slots: &mut HashMap<String, Slot>, key: &str, since: Instant) {
        if let Some(slot) = slots.get_mut(key)
            && slot.since == since
        {
            slot.count = slot.count.saturating_sub(1);
        }
    }
}

impl Attempt<'_> {
    /// The password was right: the account's counter is cleared and the address
    /// gets this attempt back (other failures from the address stay counted).
    pub fn succeeded(self) {
        let mut slots = self.limiter.lock();
        slots.remove(&self.account.0);
        LoginLimiter::give_back(&mut slots, &self.address.0, self.address.1);
    }

    /// The password was not checked (e.g. the hasher was busy): both keys get this
    /// attempt back.
    pub fn refund(self) {
        let mut slots = self.limiter.lock();
        LoginLimiter::give_back(&mut slots, &self.account.0, self.account.1);
        LoginLimiter::give_back(&mut slots, &self.address.0, self.address.1);
    }
}

/// The throttled unit of a client address: the IPv4 address, or the /64 of an IPv6
/// one (a single host usually holds a whole /64).
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(account_max: u32, address_max: u32, max_keys: usize) -> LoginLimiter {
        LoginLimiter::new(LimiterConfig {
            account_max,
            address_max,
            window: Duration::from_secs(60),
            max_keys,
            trusted_proxies: Vec::new(),
            register_max: 2,
            register_window: Duration::from_secs(60),
            registration: Registration::Open,
        })
    }

    #[test]
    fn registrations_are_counted_per_address() {
        let l = limiter(3, 100, 100);
        assert!(l.reserve_registration(ip(1)).is_ok());
        assert!(l.reserve_registration(ip(1)).is_ok());
        assert!(l.reserve_registration(ip(1)).is_err(), "a third waits");
        assert!(l.reserve_registration(ip(2)).is_ok(), "another address");
        assert!(l.reserve("ada", ip(1)).is_ok(), "logins are counted apart");
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn reservations_count_before_the_password_is_checked() {
        let l = limiter(3, 100, 100);
        let held: Vec<_> = (0..3).map(|_| l.reserve("ada", ip(1)).unwrap()).collect();
        assert!(
            l.reserve("ada", ip(2)).is_err(),
            "a 4th concurrent attempt waits"
        );
        drop(held);
        assert!(
            l.reserve("ada", ip(3)).is_err(),
            "dropped attempts stay failures"
        );
    }

    #[test]
    fn a_success_never_resets_another_accounts_counter() {
        let l = limiter(3, 100, 100);
        for _ in 0..2 {
            let _failed = l.reserve("admin", ip(1)).unwrap();
        }
        l.reserve("eve", ip(1)).unwrap().succeeded();
        let _third = l.reserve("admin", ip(1)).unwrap();
        assert!(l.reserve("admin", ip(1)).is_err());
    }

    #[test]
    fn an_address_is_throttled_across_accounts_and_success_only_refunds_itself() {
        let l = limiter(100, 3, 100);
        let _a = l.reserve("a", ip(1)).unwrap();
        let _b = l.reserve("b", ip(1)).unwrap();
        l.reserve("c", ip(1)).unwrap().succeeded();
        let _d = l.reserve("d", ip(1)).unwrap();
        assert!(
            l.reserve("e", ip(1)).is_err(),
            "the address used its attempts"
        );
        assert!(
            l.reserve("e", ip(2)).is_ok(),
            "another address is not affected"
        );
    }

    #[test]
    fn a_refund_gives_the_attempt_back() {
        let l = limiter(1, 1, 100);
        l.reserve("ada", ip(1)).unwrap().refund();
        assert!(l.reserve("ada", ip(1)).is_ok());
    }

    #[test]
    fn the_table_stays_bounded_under_many_distinct_keys() {
        let l = limiter(5, 5, 64);
        for n in 0..10_000 {
            let _ = l.reserve(&format!("user{n}"), ip(n));
            assert!(l.tracked() <= 64, "{} keys after {n}", l.tracked());
        }
    }

    #[test]
    fn ipv6_hosts_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "10.0.0.1");
    }
}
