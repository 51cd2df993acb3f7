//! Money as a double-entry ledger: every movement is a transfer between two accounts, written as
//! two entries that sum to zero, so the books always balance and every balance is derived from
//! its entries, never stored alone. Also the refund policy that decides how much of a booking
//! comes back when its customer cancels.
//!
//! Accounts: a customer's wallet (credit they can spend; never below zero), an organizer's
//! takings, and `cards`, the outside world of card payments (money in from cards is a debit
//! there; money back to cards a credit).

use crate::Timestamp;
use crate::error::DomainError;
use crate::ids::{OrganizerId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    Wallet(UserId),
    Organizer(OrganizerId),
    Cards,
}

impl Account {
    /// The account's id in one currency, e.g. `wallet:usr_…:EUR`.
    pub fn id(&self, currency: &str) -> String {
        match self {
            Account::Wallet(user) => format!("wallet:{user}:{currency}"),
            Account::Organizer(organizer) => format!("organizer:{organizer}:{currency}"),
            Account::Cards => format!("cards:{currency}"),
        }
    }

    pub fn is_wallet(id: &str) -> bool {
        id.starts_with("wallet:")
    }
}

/// `amount_minor` moves from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub from: Account,
    pub to: Account,
    pub amount_minor: i64,
}

/// One side of a transfer: what an account gained (positive) or gave (negative).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub account: String,
    pub amount_minor: i64,
}

/// The entries of `transfers` in `currency`: two per transfer, summing to zero. Transfers of
/// nothing are left out; a negative one is a bug and refused.
pub fn entries(transfers: &[Transfer], currency: &str) -> Result<Vec<Entry>, DomainError> {
    let mut out = Vec::with_capacity(transfers.len() * 2);
    for transfer in transfers {
        if transfer.amount_minor < 0 || transfer.from == transfer.to {
            return Err(DomainError::Conflict(format!(
                "a transfer of {} from {:?} to {:?} is not a movement of money",
                transfer.amount_minor, transfer.from, transfer.to
            )));
        }
        if transfer.amount_minor == 0 {
            continue;
        }
        out.push(Entry {
            account: transfer.from.id(currency),
            amount_minor: -transfer.amount_minor,
        });
        out.push(Entry {
            account: transfer.to.id(currency),
            amount_minor: transfer.amount_minor,
        });
    }
    debug_assert_eq!(out.iter().map(|e| e.amount_minor).sum::<i64>(), 0);
    Ok(out)
}

/// How much of a booking comes back when its customer cancels: everything until
/// `full_until_hours_before` the start, `partial_percent` of it after that, nothing once the show
/// has started. A show the organizer cancels is always refunded in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundPolicy {
    pub full_until_hours_before: i64,
    pub partial_percent: i64,
}

impl Default for RefundPolicy {
    fn default() -> Self {
        Self {
            full_until_hours_before: 24,
            partial_percent: 50,
        }
    }
}

impl RefundPolicy {
    pub fn parse(self) -> Result<Self, DomainError> {
        let mut problems = crate::error::Problems::default();
        problems.check(
            (0..=24 * 365).contains(&self.full_until_hours_before),
            "full_until_hours_before",
            "must be 0 to 8760 hours",
        );
        problems.check(
            (0..=100).contains(&self.partial_percent),
            "partial_percent",
            "must be 0 to 100",
        );
        problems.finish(self)
    }

    /// The refund of `paid_minor` for a cancellation at `now` of a show starting at `starts_at`,
    /// rounded down to the minor unit (the customer never gets more than they paid).
    pub fn refund_minor(&self, paid_minor: i64, starts_at: Timestamp, now: Timestamp) -> i64 {
        let full_until = starts_at.plus_minutes(-self.full_until_hours_before * 60);
        if now < full_until {
            paid_minor
        } else if now < starts_at {
            paid_minor * self.partial_percent.clamp(0, 100) / 100
        } else {
            0
        }
    }
}

/// Where a refund goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundTo {
    /// Back to the card it was paid with.
    #[default]
    Card,
    /// Credit in the customer's wallet, to spend on another booking.
    Wallet,
}

/// The transfers that refund `refund_minor` of a booking paid `wallet_minor` from the wallet and
/// the rest by card: the wallet's share goes back to the wallet first, the rest where asked.
pub fn refund_transfers(
    organizer: &OrganizerId,
    customer: &UserId,
    refund_minor: i64,
    wallet_minor: i64,
    to: RefundTo,
) -> Vec<Transfer> {
    let back_to_wallet = refund_minor.min(wallet_minor).max(0);
    let rest = refund_minor - back_to_wallet;
    let rest_to = match to {
        RefundTo::Card => Account::Cards,
        RefundTo::Wallet => Account::Wallet(customer.clone()),
    };
    vec![
        Transfer {
            from: Account::Organizer(organizer.clone()),
            to: Account::Wallet(customer.clone()),
            amount_minor: back_to_wallet,
        },
        Transfer {
            from: Account::Organizer(organizer.clone()),
            to: rest_to,
            amount_minor: rest,
        },
    ]
}

/// The transfers that pay `total_minor` for a booking, `wallet_minor` of it from the wallet.
pub fn payment_transfers(
    organizer: &OrganizerId,
    customer: &UserId,
    total_minor: i64,
    wallet_minor: i64,
) -> Vec<Transfer> {
    vec![
        Transfer {
            from: Account::Wallet(customer.clone()),
            to: Account::Organizer(organizer.clone()),
            amount_minor: wallet_minor,
        },
        Transfer {
            from: Account::Cards,
            to: Account::Organizer(organizer.clone()),
            amount_minor: total_minor - wallet_minor,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn refunds_follow_the_policy() {
        let policy = RefundPolicy::default();
        let start = Timestamp::from_unix_ms(100 * 3_600_000);
        let hours_before = |h: i64| start.plus_minutes(-h * 60);
        assert_eq!(policy.refund_minor(1_999, start, hours_before(25)), 1_999);
        assert_eq!(policy.refund_minor(1_999, start, hours_before(24)), 999);
        assert_eq!(policy.refund_minor(1_999, start, hours_before(1)), 999);
        assert_eq!(policy.refund_minor(1_999, start, start), 0);
        assert!(
            RefundPolicy {
                full_until_hours_before: -1,
                partial_percent: 101
            }
            .parse()
            .is_err()
        );
    }

    /// A tiny book-keeper over entries, as the store keeps them.
    #[derive(Default)]
    struct Books {
        balances: BTreeMap<String, i64>,
        transactions: Vec<Vec<Entry>>,
    }

    impl Books {
        fn balance(&self, account: &Account) -> i64 {
            *self.balances.get(&account.id("EUR")).unwrap_or(&0)
        }

        /// Posts all or nothing; a wallet may not go below zero.
        fn post(&mut self, transfers: &[Transfer]) -> bool {
            let entries = entries(transfers, "EUR").unwrap();
            let mut after = self.balances.clone();
            for entry in &entries {
                *after.entry(entry.account.clone()).or_default() += entry.amount_minor;
            }
            if after
                .iter()
                .any(|(account, balance)| Account::is_wallet(account) && *balance < 0)
            {
                return false;
            }
            self.balances = after;
            self.transactions.push(entries);
            true
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// A customer books for `total`, asking to pay `wallet` of it from their wallet.
        Book {
            customer: usize,
            total: i64,
            wallet: i64,
        },
        /// Booking number `booking` is cancelled `hours_before` the start.
        Cancel {
            booking: usize,
            hours_before: i64,
            to_wallet: bool,
        },
        /// The organizer cancels the show: everything still booked comes back in full.
        CancelShow,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3usize, 0..5_000i64, 0..5_000i64).prop_map(|(customer, total, wallet)| {
                Step::Book {
                    customer,
                    total,
                    wallet: wallet.min(total),
                }
            }),
            (0..20usize, -2..48i64, any::<bool>()).prop_map(
                |(booking, hours_before, to_wallet)| {
                    Step::Cancel {
                        booking,
                        hours_before,
                        to_wallet,
                    }
                }
            ),
            Just(Step::CancelShow),
        ]
    }

    proptest! {
        /// Any sequence of bookings (card, wallet or split), cancellations (refunded by the
        /// policy to the card or the wallet) and show cancellations keeps every transaction
        /// balanced, the whole ledger at zero, no wallet negative, and no booking refunded more
        /// than it paid or twice.
        #[test]
        fn the_ledger_always_balances(steps in proptest::collection::vec(step(), 0..40)) {
            let organizer = OrganizerId::generate();
            let customers: Vec<UserId> = (0..3).map(|_| UserId::generate()).collect();
            let start = Timestamp::from_unix_ms(1_000 * 3_600_000);
            let policy = RefundPolicy::default();
            let mut books = Books::default();
            // (customer, paid, wallet share, refunded)
            let mut bookings: Vec<(usize, i64, i64, Option<i64>)> = Vec::new();
            for step in steps {
                match step {
                    Step::Book { customer, total, wallet } => {
                        let transfers = payment_transfers(&organizer, &customers[customer], total, wallet);
                        if books.post(&transfers) {
                            bookings.push((customer, total, wallet, None));
                        }
                    }
                    Step::Cancel { booking, hours_before, to_wallet } => {
                        let Some(entry) = bookings.get_mut(booking) else { continue };
                        if entry.3.is_some() { continue; }
                        let now = start.plus_minutes(-hours_before * 60);
                        let refund = policy.refund_minor(entry.1, start, now);
                        let to = if to_wallet { RefundTo::Wallet } else { RefundTo::Card };
                        let transfers = refund_transfers(&organizer, &customers[entry.0], refund, entry.2, to);
                        prop_assert!(books.post(&transfers));
                        entry.3 = Some(refund);
                    }
                    Step::CancelShow => {
                        for entry in bookings.iter_mut().filter(|b| b.3.is_none()) {
                            let transfers = refund_transfers(&organizer, &customers[entry.0], entry.1, entry.2, RefundTo::Card);
                            prop_assert!(books.post(&transfers));
                            entry.3 = Some(entry.1);
                        }
                    }
                }
            }
            for transaction in &books.transactions {
                prop_assert_eq!(transaction.iter().map(|e| e.amount_minor).sum::<i64>(), 0);
            }
            prop_assert_eq!(books.balances.values().sum::<i64>(), 0);
            for customer in &customers {
                prop_assert!(books.balance(&Account::Wallet(customer.clone())) >= 0);
            }
            for (_, paid, _, refunded) in &bookings {
                prop_assert!(refunded.unwrap_or(0) <= *paid);
            }
            // What the organizer holds is exactly what was paid and not given back.
            let kept: i64 = bookings.iter().map(|(_, paid, _, refunded)| paid - refunded.unwrap_or(0)).sum();
            prop_assert_eq!(books.balance(&Account::Organizer(organizer.clone())), kept);
        }
    }
}
