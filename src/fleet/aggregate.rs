//! `fleet report`'s aggregates: pure functions from the services' facts, the templates' releases
//! and an as-of date to adoption, lag, release reach, ejections, drift, upgrade leverage and the
//! services out of policy, per template and per team within a template. No IO.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use semver::Version;

use crate::report::fleet::SkippedEntry;
use crate::report::fleet_report::{
    AdoptionPoint, Counted, Ejections, FleetReport, Group, Lag, Leverage, OutOfPolicy, Reach,
    ReleaseRow,
};

/// The team of the services whose manifest names no owner (and the fleet file gives none).
pub const NO_TEAM: &str = "(none)";

/// One release of a template, as the aggregates need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub version: Version,
    pub date: Date,
    /// The last supported day, if the release has one.
    pub end_of_support: Option<Date>,
}

/// A template's releases, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    pub name: String,
    pub releases: Vec<ReleaseInfo>,
}

/// Files one upgrade changed, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Files {
    pub updated: usize,
    pub merged: usize,
    pub conflicts: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub date: Date,
    pub from: Version,
    pub to: Version,
    /// `None`: unknown (recovered from git).
    pub files: Option<Files>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EjectedFact {
    pub component: String,
    pub reason: Option<String>,
    pub date: Option<Date>,
}

/// What the report knows of one service (from a `status` report, read or computed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub name: String,
    pub location: String,
    pub team: Option<String>,
    pub template: String,
    /// Its version on `observed`.
    pub version: Version,
    /// The day the facts were taken (the status report's `today`).
    pub observed: Date,
    /// `None`: unknown, the service is taken to have always existed.
    pub created: Option<Date>,
    /// Oldest first.
    pub upgrades: Vec<Upgrade>,
    pub ejected: Vec<EjectedFact>,
    /// Managed files edited (or deleted) locally, as observed.
    pub local_edits: Vec<String>,
    /// The policy failures its status reported on `observed`, other than being out of support
    /// (which the report computes for its as-of date from the releases).
    pub policy_errors: Vec<String>,
    /// The required migrations pending on `observed`, with the release that ships each and the
    /// finding's message: before `observed`, each counts from its release's date while the
    /// service was below that release.
    pub pending_required: Vec<(Version, String)>,
}

impl ServiceFacts {
    /// Whether the service existed on `day`.
    pub fn exists_on(&self, day: Date) -> bool {
        self.created.is_none_or(|c| c <= day)
    }

    /// Its version on `day` (after the upgrades made on or before it).
    pub fn version_on(&self, day: Date) -> Version {
        if day >= self.observed {
            return self.version.clone();
        }
        match self.upgrades.iter().rev().find(|u| u.date <= day) {
            Some(u) => u.to.clone(),
            None => match self.upgrades.first() {
                Some(first) => first.from.clone(),
                None => self.version.clone(),
            },
        }
    }
}

/// Every template of the catalogue with its releases' dates and ends of support (a date that
/// does not parse is left out: `status` reports the broken release).
pub fn templates(catalogue: &crate::template::Catalogue) -> Vec<TemplateInfo> {
    catalogue
        .templates
        .iter()
        .map(|t| TemplateInfo {
            name: t.name.clone(),
            releases: t
                .released()
                .filter_map(|r| {
                    Some(ReleaseInfo {
                        version: r.version.clone(),
                        date: crate::policy::parse_date(&r.meta.date)?,
                        end_of_support: r
                            .meta
                            .support
                            .end_of_support
                            .as_deref()
                            .and_then(crate::policy::parse_date),
                    })
                })
                .collect(),
        })
        .collect()
}

/// The whole report as of `as_of`. `skipped` are the entries that could not be read.
pub fn report(
    services: &[ServiceFacts],
    templates: &[TemplateInfo],
    as_of: Date,
    skipped: Vec<SkippedEntry>,
) -> FleetReport {
    let alive: Vec<&ServiceFacts> = services.iter().filter(|s| s.exists_on(as_of)).collect();
    let mut groups = Vec::new();
    let mut unknown = Vec::new();
    for template in templates {
        let of: Vec<&ServiceFacts> = alive
            .iter()
            .copied()
            .filter(|s| s.template == template.name)
            .collect();
        if of.is_empty() {
            continue;
        }
        groups.push(group(template, None, &of, as_of));
        let teams: BTreeSet<Option<&String>> = of.iter().map(|s| s.team.as_ref()).collect();
        for team in teams {
            let mine: Vec<&ServiceFacts> = of
                .iter()
                .copied()
                .filter(|s| s.team.as_ref() == team)
                .collect();
            groups.push(group(
                template,
                Some(team.cloned().unwrap_or_else(|| NO_TEAM.to_string())),
                &mine,
                as_of,
            ));
        }
    }
    for s in &alive {
        if !templates.iter().any(|t| t.name == s.template) {
            unknown.push(SkippedEntry {
                location: s.location.clone(),
                reason: format!("unknown template `{}`", s.template),
            });
        }
    }
    let mut out_of_policy: Vec<OutOfPolicy> = alive
        .iter()
        .filter_map(|s| {
            let template = templates.iter().find(|t| t.name == s.template)?;
            let reasons = policy_reasons(s, template, as_of);
            (!reasons.is_empty()).then(|| OutOfPolicy {
                service: s.name.clone(),
                location: s.location.clone(),
                team: s.team.clone(),
                template: s.template.clone(),
                version: s.version_on(as_of).to_string(),
                reasons,
            })
        })
        .collect();
    out_of_policy.sort_by(|a, b| (&a.team, &a.service).cmp(&(&b.team, &b.service)));
    let unknown_count = unknown.len();
    let mut skipped = skipped;
    skipped.extend(unknown);
    let known = alive.len() - unknown_count;
    FleetReport::new(as_of.to_string(), known, groups, out_of_policy, skipped)
}

/// Why a service is out of policy on `day`: its release past its end of support, and the
/// findings its status reported (before the facts were taken: its pending required migrations
/// already released on `day`).
fn policy_reasons(s: &ServiceFacts, template: &TemplateInfo, day: Date) -> Vec<String> {
    let version = s.version_on(day);
    let mut reasons = Vec::new();
    if let Some(end) = release(template, &version).and_then(|r| r.end_of_support)
        && day > end
    {
        reasons.push(format!("release {version} past its end of support ({end})"));
    }
    if day >= s.observed {
        for e in &s.policy_errors {
            if !reasons.contains(e) {
                reasons.push(e.clone());
            }
        }
    } else {
        // Earlier, a required migration pending now was pending from its release's day on,
        // while the service was below that release.
        for (shipped_in, message) in &s.pending_required {
            let out = release(template, shipped_in).is_some_and(|r| r.date <= day);
            if out && version < *shipped_in && !reasons.contains(message) {
                reasons.push(message.clone());
            }
        }
    }
    reasons
}

fn release<'t>(template: &'t TemplateInfo, version: &Version) -> Option<&'t ReleaseInfo> {
    template.releases.iter().find(|r| &r.version == version)
}

/// Every aggregate over `services` (all of `template`, existing on `as_of`).
fn group(
    template: &TemplateInfo,
    team: Option<String>,
    services: &[&ServiceFacts],
    as_of: Date,
) -> Group {
    let released = released_by(template, as_of);
    let versions: Vec<Version> = services.iter().map(|s| s.version_on(as_of)).collect();
    let n = services.len();
    let AdoptionPoint {
        newest,
        on_supported: supported,
        on_newest,
        ..
    } = standing(template, &versions, as_of);
    let mut lag: BTreeMap<usize, usize> = BTreeMap::new();
    for v in &versions {
        let behind = released.iter().filter(|r| &r.version > v).count();
        *lag.entry(behind).or_default() += 1;
    }
    let releases = released
        .iter()
        .map(|r| ReleaseRow {
            version: r.version.to_string(),
            date: r.date.to_string(),
            services_on: versions.iter().filter(|v| **v == r.version).count(),
            services_on_or_past: versions.iter().filter(|v| **v >= r.version).count(),
            reach: reach(services, r, as_of),
            leverage: leverage(services, &r.version, as_of),
        })
        .collect();
    let mut ejected: BTreeMap<&str, (usize, BTreeMap<&str, usize>)> = BTreeMap::new();
    for s in services {
        for e in s
            .ejected
            .iter()
            .filter(|e| e.date.is_none_or(|d| d <= as_of))
        {
            let entry = ejected.entry(&e.component).or_default();
            entry.0 += 1;
            *entry
                .1
                .entry(e.reason.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
    }
    let ejections = by_count(
        ejected
            .into_iter()
            .map(|(component, (count, reasons))| Ejections {
                component: component.to_string(),
                services: count,
                reasons: by_count(
                    reasons
                        .into_iter()
                        .map(|(reason, services)| Counted {
                            name: reason.to_string(),
                            services,
                        })
                        .collect(),
                    |c| (c.services, c.name.clone()),
                ),
            })
            .collect(),
        |e| (e.services, e.component.clone()),
    );
    let mut drift: BTreeMap<&str, usize> = BTreeMap::new();
    for s in services {
        let paths: BTreeSet<&str> = s.local_edits.iter().map(String::as_str).collect();
        for p in paths {
            *drift.entry(p).or_default() += 1;
        }
    }
    let drift = by_count(
        drift
            .into_iter()
            .map(|(name, services)| Counted {
                name: name.to_string(),
                services,
            })
            .collect(),
        |c| (c.services, c.name.clone()),
    );
    Group {
        template: template.name.clone(),
        team,
        services: n,
        newest,
        adoption: adoption(template, services, as_of),
        on_supported: supported,
        on_supported_share: share(supported, n),
        on_newest,
        on_newest_share: share(on_newest, n),
        lag: lag
            .into_iter()
            .map(|(releases_behind, services)| Lag {
                releases_behind,
                services,
            })
            .collect(),
        releases,
        ejections,
        drift,
        out_of_policy: services
            .iter()
            .filter(|s| !policy_reasons(s, template, as_of).is_empty())
            .count(),
    }
}

/// The releases of `template` published on or before `day`, oldest first.
fn released_by(template: &TemplateInfo, day: Date) -> Vec<&ReleaseInfo> {
    template.releases.iter().filter(|r| r.date <= day).collect()
}

/// Where `versions` (the versions on `day` of the services existing then) stand on `day`: how
/// many are on the newest release published by then, and how many on a release not past its
/// end of support.
fn standing(template: &TemplateInfo, versions: &[Version], day: Date) -> AdoptionPoint {
    let newest = released_by(template, day).last().map(|r| r.version.clone());
    // A version that is not a release (a draft, or one the catalogue no longer has) is neither
    // supported nor the newest: a draft may still change, and is never for a team's main branch.
    let on_supported = versions
        .iter()
        .filter(|v| {
            release(template, v).is_some_and(|r| r.end_of_support.is_none_or(|end| day <= end))
        })
        .count();
    let on_newest = versions
        .iter()
        .filter(|v| newest.as_ref() == Some(*v))
        .count();
    let n = versions.len();
    AdoptionPoint {
        date: day.to_string(),
        newest: newest.map(|v| v.to_string()),
        services: n,
        on_newest,
        on_newest_share: share(on_newest, n),
        on_supported,
        on_supported_share: share(on_supported, n),
    }
}

/// Adoption over time: the standing of `services` (created by then, at their version then) at
/// the end of every month from the month of the template's first release up to `as_of`, the
/// last point being `as_of` itself. Empty when nothing was released by `as_of`.
pub fn adoption(
    template: &TemplateInfo,
    services: &[&ServiceFacts],
    as_of: Date,
) -> Vec<AdoptionPoint> {
    let Some(first) = released_by(template, as_of).first().map(|r| r.date) else {
        return Vec::new();
    };
    let mut points = Vec::new();
    let mut day = first.last_of_month();
    while day < as_of {
        points.push(standing_on(template, services, day));
        day = match day.tomorrow() {
            Ok(next) => next.last_of_month(),
            Err(_) => break,
        };
    }
    points.push(standing_on(template, services, as_of));
    points
}

fn standing_on(template: &TemplateInfo, services: &[&ServiceFacts], day: Date) -> AdoptionPoint {
    let versions: Vec<Version> = services
        .iter()
        .filter(|s| s.exists_on(day))
        .map(|s| s.version_on(day))
        .collect();
    standing(template, &versions, day)
}

/// Most services first, then by name.
fn by_count<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> (usize, K)) -> Vec<T> {
    items.sort_by(|a, b| {
        let (ca, ka) = key(a);
        let (cb, kb) = key(b);
        cb.cmp(&ca).then(ka.cmp(&kb))
    });
    items
}

/// `part / whole`, rounded to 4 decimals (0 for an empty whole).
pub fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
}

/// Days from the release's date until 50 %, 70 %, 90 % of the services existing each day were on
/// it or a later release, looking no further than `as_of`; `None` when not reached.
pub fn reach(services: &[&ServiceFacts], release: &ReleaseInfo, as_of: Date) -> Reach {
    let mut days: BTreeSet<Date> = BTreeSet::new();
    days.insert(release.date);
    for s in services {
        days.extend(s.created.filter(|c| *c > release.date && *c <= as_of));
        days.extend(
            s.upgrades
                .iter()
                .map(|u| u.date)
                .filter(|d| *d > release.date && *d <= as_of),
        );
        if s.observed > release.date && s.observed <= as_of {
            days.insert(s.observed);
        }
    }
    let mut reached = [None; 3];
    for day in days {
        let existing: Vec<&&ServiceFacts> = services.iter().filter(|s| s.exists_on(day)).collect();
        if existing.is_empty() {
            continue;
        }
        let on = existing
            .iter()
            .filter(|s| s.version_on(day) >= release.version)
            .count();
        let elapsed = (day - release.date).get_days() as i64;
        for (slot, threshold) in reached.iter_mut().zip([50, 70, 90]) {
            if slot.is_none() && on * 100 >= threshold * existing.len() {
                *slot = Some(elapsed);
            }
        }
        if reached.iter().all(Option::is_some) {
            break;
        }
    }
    Reach {
        days_to_50: reached[0],
        days_to_70: reached[1],
        days_to_90: reached[2],
    }
}

/// The upgrades to `version` made on or before `as_of`, with the files they changed.
pub fn leverage(services: &[&ServiceFacts], version: &Version, as_of: Date) -> Leverage {
    let mut l = Leverage::default();
    for u in services
        .iter()
        .flat_map(|s| &s.upgrades)
        .filter(|u| &u.to == version && u.date <= as_of)
    {
        l.upgrades += 1;
        match u.files {
            Some(f) => {
                l.updated += f.updated;
                l.merged += f.merged;
                l.conflicts += f.conflicts;
            }
            None => l.unknown += 1,
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn a_draft_release_is_not_among_the_fleets_releases() {
        use crate::template::{Catalogue, Release, Template};
        let release = |version: &str, draft: bool| Release {
            version: v(version),
            meta: toml::from_str(&format!(
                "version = \"{version}\"\ndate = \"2026-01-01\"\nsummary = \"s\"\ndraft = {draft}\n"
            ))
            .unwrap(),
            files: None,
        };
        let catalogue = Catalogue {
            templates: vec![Template {
                name: "service".into(),
                description: "d".into(),
                releases: vec![release("1.0.0", false), release("2.0.0", true)],
            }],
        };
        let info = templates(&catalogue);
        let versions: Vec<String> = info[0]
            .releases
            .iter()
            .map(|r| r.version.to_string())
            .collect();
        assert_eq!(versions, vec!["1.0.0"]);
    }

    fn catalogue() -> Vec<TemplateInfo> {
        vec![TemplateInfo {
            name: "service".into(),
            releases: vec![
                ReleaseInfo {
                    version: v("1.0.0"),
                    date: d("2026-01-01"),
                    end_of_support: Some(d("2026-06-30")),
                },
                ReleaseInfo {
                    version: v("2.0.0"),
                    date: d("2026-03-01"),
                    end_of_support: None,
                },
            ],
        }]
    }

    fn service(name: &str, team: &str, created: &str, upgraded: Option<&str>) -> ServiceFacts {
        let upgrades: Vec<Upgrade> = upgraded
            .map(|date| Upgrade {
                date: d(date),
                from: v("1.0.0"),
                to: v("2.0.0"),
                files: Some(Files {
                    updated: 10,
                    merged: 2,
                    conflicts: 1,
                }),
            })
            .into_iter()
            .collect();
        ServiceFacts {
            name: name.into(),
            location: name.into(),
            team: Some(team.into()),
            template: "service".into(),
            version: if upgrades.is_empty() {
                v("1.0.0")
            } else {
                v("2.0.0")
            },
            observed: d("2026-12-01"),
            created: Some(d(created)),
            upgrades,
            ejected: vec![],
            local_edits: vec![],
            policy_errors: vec![],
            pending_required: vec![],
        }
    }

    #[test]
    fn an_empty_fleet_has_no_groups() {
        let r = report(&[], &catalogue(), d("2026-12-01"), vec![]);
        assert_eq!(r.summary.services, 0);
        assert!(r.groups.is_empty());
        assert!(r.out_of_policy.is_empty());
    }

    #[test]
    fn a_service_of_an_unknown_template_is_skipped_not_counted() {
        let mut s = service("a", "core", "2026-01-10", None);
        s.template = "gone".into();
        let r = report(&[s], &catalogue(), d("2026-12-01"), vec![]);
        assert_eq!(r.summary.services, 0);
        assert_eq!(r.summary.skipped, 1);
        assert_eq!(r.skipped[0].reason, "unknown template `gone`");
    }

    #[test]
    fn a_service_on_a_draft_is_neither_on_the_newest_nor_on_a_supported_release() {
        // 3.0.0 is a draft: not among the released versions `templates` gives.
        let mut s = service("a", "core", "2026-01-10", Some("2026-03-11"));
        s.version = v("3.0.0");
        s.upgrades[0].to = v("3.0.0");
        let on_newest = service("b", "core", "2026-01-10", Some("2026-03-11"));
        let r = report(&[s, on_newest], &catalogue(), d("2026-12-01"), vec![]);
        let all = &r.groups[0];
        assert_eq!((all.on_newest, all.on_newest_share), (1, 0.5));
        assert_eq!((all.on_supported, all.on_supported_share), (1, 0.5));
        let last = all.adoption.last().expect("adoption");
        assert_eq!((last.on_newest, last.on_supported), (1, 1));
    }

    #[test]
    fn one_service_on_the_newest() {
        let s = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let r = report(&[s], &catalogue(), d("2026-12-01"), vec![]);
        let all = &r.groups[0];
        assert_eq!((all.team.as_deref(), all.services), (None, 1));
        assert_eq!((all.on_newest, all.on_newest_share), (1, 1.0));
        assert_eq!(all.newest.as_deref(), Some("2.0.0"));
        assert_eq!(all.lag.len(), 1);
        assert_eq!((all.lag[0].releases_behind, all.lag[0].services), (0, 1));
        let two = &all.releases[1];
        assert_eq!(two.reach.days_to_50, Some(10));
        assert_eq!(two.reach.days_to_90, Some(10));
        assert_eq!(
            (
                two.leverage.upgrades,
                two.leverage.updated,
                two.leverage.merged,
                two.leverage.conflicts
            ),
            (1, 10, 2, 1)
        );
        assert_eq!(r.groups[1].team.as_deref(), Some("core"));
    }

    #[test]
    fn reach_counts_only_the_services_that_existed_then() {
        // Two old services upgrade on day 10 and day 40; a service created on 2.0.0 after the
        // release exists from its creation and counts as on it.
        let a = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let b = service("b", "core", "2026-01-10", Some("2026-04-10"));
        let mut c = service("c", "edge", "2026-03-21", None);
        c.version = v("2.0.0");
        let mut late = service("d", "edge", "2026-01-05", None);
        late.upgrades.clear();
        let fleet = [a, b, c, late];
        let refs: Vec<&ServiceFacts> = fleet.iter().collect();
        let r = reach(&refs, &catalogue()[0].releases[1], d("2026-12-01"));
        // Day 10: a (1 of 3 existing) = 33 %; day 20: c created on 2.0.0, 2 of 4 = 50 %;
        // day 40: b, 3 of 4 = 75 %; d never upgrades: 90 % not reached.
        assert_eq!(r.days_to_50, Some(20));
        assert_eq!(r.days_to_70, Some(40));
        assert_eq!(r.days_to_90, None);
    }

    #[test]
    fn a_service_created_after_the_release_on_an_older_one_holds_the_reach_back() {
        // a (existing at the release) upgrades on day 10; b is created on day 5, pinned to
        // 1.0.0, and upgrades on day 40: 50 % on day 10 (1 of 2), 70 % and 90 % on day 40.
        let a = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let b = service("b", "core", "2026-03-06", Some("2026-04-10"));
        let fleet = [a, b];
        let refs: Vec<&ServiceFacts> = fleet.iter().collect();
        let two = &catalogue()[0].releases[1];
        let r = reach(&refs, two, d("2026-12-01"));
        assert_eq!(
            (r.days_to_50, r.days_to_70, r.days_to_90),
            (Some(10), Some(40), Some(40))
        );
        // As of day 20, b has not upgraded yet: only 50 % is reached.
        let r = reach(&refs, two, d("2026-03-21"));
        assert_eq!((r.days_to_50, r.days_to_70), (Some(10), None));
        // No service at all: nothing is reached.
        let r = reach(&[], two, d("2026-12-01"));
        assert_eq!((r.days_to_50, r.days_to_90), (None, None));
    }

    #[test]
    fn as_of_before_a_release_leaves_it_out_and_a_later_service_uncounted() {
        let a = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let b = service("b", "core", "2026-02-20", None);
        let r = report(&[a, b], &catalogue(), d("2026-02-10"), vec![]);
        assert_eq!(r.summary.services, 1);
        let all = &r.groups[0];
        assert_eq!(all.newest.as_deref(), Some("1.0.0"));
        assert_eq!(all.releases.len(), 1);
        assert_eq!((all.on_newest, all.lag.len()), (1, 1));
    }

    #[test]
    fn as_of_a_past_date_uses_the_history() {
        let a = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let b = service("b", "core", "2026-02-01", None);
        let c = service("c", "edge", "2026-08-01", Some("2026-08-02"));
        let fleet = [a, b, c];
        // On 2026-03-05: a and b exist, both on 1.0.0; 2.0.0 out 4 days; c not created yet.
        let r = report(&fleet, &catalogue(), d("2026-03-05"), vec![]);
        assert_eq!(r.summary.services, 2);
        let all = &r.groups[0];
        assert_eq!(all.on_newest, 0);
        assert_eq!(all.on_supported, 2);
        assert_eq!(all.releases[1].reach.days_to_50, None);
        assert_eq!(all.releases[1].leverage.upgrades, 0);
        // On 2026-07-01: 1.0.0 is past its end of support; b is still on it.
        let r = report(&fleet, &catalogue(), d("2026-07-01"), vec![]);
        assert_eq!(r.summary.services, 2);
        assert_eq!(r.groups[0].on_supported, 1);
        assert_eq!(r.groups[0].on_supported_share, 0.5);
        assert_eq!(r.out_of_policy.len(), 1);
        assert_eq!(r.out_of_policy[0].service, "b");
        assert_eq!(r.groups[0].releases[1].reach.days_to_50, Some(10));
    }

    #[test]
    fn as_of_a_past_date_a_required_migration_pending_since_its_release_is_out_of_policy() {
        // b stayed on 1.0.0; 2.0.0 (2026-03-01) ships a required migration it never applied.
        let mut b = service("b", "core", "2026-01-10", None);
        let message = "m1 (2.0.0): rename a key";
        b.policy_errors = vec![message.to_string()];
        b.pending_required = vec![(v("2.0.0"), message.to_string())];
        let fleet = [b];
        let reasons = |day: &str| {
            let r = report(&fleet, &catalogue(), d(day), vec![]);
            r.out_of_policy
                .iter()
                .flat_map(|o| o.reasons.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(reasons("2026-02-01"), Vec::<String>::new(), "not out yet");
        assert_eq!(reasons("2026-03-05"), [message]);
        assert_eq!(reasons("2026-06-01"), [message]);
        // On the day observed, the status's own findings (and 1.0.0 is past its support).
        assert!(reasons("2026-12-01").contains(&message.to_string()));
    }

    #[test]
    fn ejections_and_drift_rank_by_services() {
        let mut a = service("a", "core", "2026-01-10", None);
        let mut b = service("b", "core", "2026-01-10", None);
        for s in [&mut a, &mut b] {
            s.ejected.push(EjectedFact {
                component: "auth".into(),
                reason: Some("we use mTLS".into()),
                date: Some(d("2026-02-01")),
            });
            s.local_edits.push("src/platform/auth.rs".into());
        }
        b.local_edits.push("Cargo.toml".into());
        let r = report(&[a, b], &catalogue(), d("2026-12-01"), vec![]);
        let all = &r.groups[0];
        assert_eq!(all.ejections[0].component, "auth");
        assert_eq!(all.ejections[0].services, 2);
        assert_eq!(all.ejections[0].reasons[0].name, "we use mTLS");
        assert_eq!(all.drift[0].name, "src/platform/auth.rs");
        assert_eq!(all.drift[0].services, 2);
        assert_eq!(all.drift[1].services, 1);
        // Before the ejections were made, none is counted.
        let r = report(&r_services(), &catalogue(), d("2026-01-20"), vec![]);
        assert!(r.groups[0].ejections.is_empty());
    }

    #[test]
    fn adoption_over_time_is_the_standing_at_each_month_end_then_as_of() {
        let a = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let b = service("b", "core", "2026-02-01", None);
        let c = service("c", "edge", "2026-08-01", Some("2026-08-02"));
        let fleet = [a, b, c];
        let refs: Vec<&ServiceFacts> = fleet.iter().collect();
        let template = &catalogue()[0];
        let points = adoption(template, &refs, d("2026-08-15"));
        type Seen<'a> = (&'a str, Option<&'a str>, usize, usize, f64, usize, f64);
        let seen: Vec<Seen> = points
            .iter()
            .map(|p| {
                (
                    p.date.as_str(),
                    p.newest.as_deref(),
                    p.services,
                    p.on_newest,
                    p.on_newest_share,
                    p.on_supported,
                    p.on_supported_share,
                )
            })
            .collect();
        let one = Some("1.0.0");
        let two = Some("2.0.0");
        assert_eq!(
            seen,
            [
                // Only a exists, on the newest (1.0.0).
                ("2026-01-31", one, 1, 1, 1.0, 1, 1.0),
                ("2026-02-28", one, 2, 2, 1.0, 2, 1.0),
                // 2.0.0 is out; a upgraded on 03-11, b did not.
                ("2026-03-31", two, 2, 1, 0.5, 2, 1.0),
                ("2026-04-30", two, 2, 1, 0.5, 2, 1.0),
                ("2026-05-31", two, 2, 1, 0.5, 2, 1.0),
                // 1.0.0's last supported day.
                ("2026-06-30", two, 2, 1, 0.5, 2, 1.0),
                ("2026-07-31", two, 2, 1, 0.5, 1, 0.5),
                // c was created on 08-01 and upgraded the next day.
                ("2026-08-15", two, 3, 2, 0.6667, 2, 0.6667),
            ]
        );
        // The last point is the report's own standing.
        let r = report(&fleet, &catalogue(), d("2026-08-15"), vec![]);
        let all = &r.groups[0];
        let last = all.adoption.last().unwrap();
        assert_eq!(
            (last.services, last.on_newest, last.on_supported),
            (all.services, all.on_newest, all.on_supported)
        );
        // As of a month end, that day is the last point, once.
        let points = adoption(template, &refs, d("2026-07-31"));
        assert_eq!(points.len(), 7);
        assert_eq!(points[6].date, "2026-07-31");
        // Before the first release there is nothing to adopt.
        assert!(adoption(template, &refs, d("2025-12-31")).is_empty());
    }

    #[test]
    fn services_on_counts_each_release_exactly() {
        let a = service("a", "core", "2026-01-10", Some("2026-03-11"));
        let b = service("b", "core", "2026-02-01", None);
        let r = report(&[a, b], &catalogue(), d("2026-12-01"), vec![]);
        let rows: Vec<(usize, usize)> = r.groups[0]
            .releases
            .iter()
            .map(|r| (r.services_on, r.services_on_or_past))
            .collect();
        assert_eq!(rows, [(1, 2), (1, 1)]);
    }

    fn r_services() -> Vec<ServiceFacts> {
        let mut a = service("a", "core", "2026-01-10", None);
        a.ejected.push(EjectedFact {
            component: "auth".into(),
            reason: None,
            date: Some(d("2026-02-01")),
        });
        vec![a]
    }
}
