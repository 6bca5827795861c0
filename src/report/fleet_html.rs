//! `fleet report --format html`: one self-contained page for leaders — no script, no stylesheet,
//! font or image from elsewhere — with the charts (inline SVG, `fleet_charts`) and under each
//! the table of its numbers, then the other tables of the report.
//!
//! The page is rendered by minijinja from `fleet_report.html` with HTML auto-escaping on (the
//! template's name ends in `.html`), so every string that comes from a manifest or a fact file
//! (team, service and component names, reasons, locations) is escaped; only the SVG charts,
//! which plotters escapes itself, are inserted as they are. Same report, same bytes.

use std::io::{self, Write};

use serde::Serialize;

use super::campaign::CampaignProgress;
use super::fleet::SkippedEntry;
use super::fleet_charts as charts;
use super::fleet_report::{FleetReport, Group, OutOfPolicy, Summary};

const TEMPLATE: &str = include_str!("fleet_report.html");

#[derive(Serialize)]
struct Page<'a> {
    as_of: &'a str,
    summary: &'a Summary,
    overview: &'a [Group],
    sections: Vec<Section<'a>>,
    campaigns: &'a [CampaignProgress],
    out_of_policy: &'a [OutOfPolicy],
    skipped: &'a [SkippedEntry],
}

/// One template: its whole-fleet group, its teams' groups, and the charts.
#[derive(Serialize)]
struct Section<'a> {
    id: String,
    all: &'a Group,
    teams: Vec<&'a Group>,
    /// Per release: services on it, all teams then each team.
    versions: Vec<VersionRow<'a>>,
    charts: Charts,
    /// The series of the adoption chart and of the version chart (one per team): name, colour.
    adoption_legend: Vec<(&'static str, String)>,
    versions_legend: Vec<(String, String)>,
}

#[derive(Serialize)]
struct VersionRow<'a> {
    version: &'a str,
    date: &'a str,
    all: usize,
    teams: Vec<usize>,
}

/// Inline SVG documents; `None` when there is nothing to draw.
#[derive(Serialize)]
struct Charts {
    adoption: Option<String>,
    versions: Option<String>,
    lag: Option<String>,
    ejections: Option<String>,
}

impl FleetReport {
    /// The report as one self-contained HTML page, with the campaigns in progress (section 10.1;
    /// none: no such table).
    pub fn html(&self, campaigns: &[CampaignProgress], out: &mut dyn Write) -> io::Result<()> {
        let mut sections = Vec::new();
        let mut rest = self.groups.as_slice();
        while let Some((all, tail)) = rest.split_first() {
            let n = tail.iter().take_while(|g| g.team.is_some()).count();
            let teams: Vec<&Group> = tail[..n].iter().collect();
            rest = &tail[n..];
            let id = format!("t{}", sections.len());
            sections.push(section(id, all, teams)?);
        }
        let page = Page {
            as_of: &self.as_of,
            summary: &self.summary,
            overview: &self.groups,
            sections,
            campaigns,
            out_of_policy: &self.out_of_policy,
            skipped: &self.skipped,
        };
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(io::Error::other)?;
        env.set_syntax(syntax);
        env.add_filter("percent", |share: f64| super::fleet_report::percent(share));
        env.add_filter("days", |days: Option<i64>| {
            days.map_or("not reached".to_string(), |d| d.to_string())
        });
        env.add_template("fleet_report.html", TEMPLATE)
            .map_err(io::Error::other)?;
        let text = env
            .get_template("fleet_report.html")
            .and_then(|t| t.render(minijinja::value::Serde(&page)))
            .map_err(io::Error::other)?;
        out.write_all(text.as_bytes())
    }
}

fn section<'a>(id: String, all: &'a Group, teams: Vec<&'a Group>) -> io::Result<Section<'a>> {
    let versions = all
        .releases
        .iter()
        .map(|r| VersionRow {
            version: &r.version,
            date: &r.date,
            all: r.services_on,
            teams: teams
                .iter()
                .map(|t| {
                    t.releases
                        .iter()
                        .find(|x| x.version == r.version)
                        .map_or(0, |x| x.services_on)
                })
                .collect(),
        })
        .collect();
    let charts = Charts {
        adoption: (!all.adoption.is_empty())
            .then(|| {
                charts::adoption(
                    &format!("{id}-adoption-chart"),
                    &all.template,
                    &all.adoption,
                )
            })
            .transpose()?,
        versions: (!all.releases.is_empty())
            .then(|| charts::versions(&format!("{id}-versions-chart"), all, &teams))
            .transpose()?,
        lag: (!all.lag.is_empty())
            .then(|| charts::lag(&format!("{id}-lag-chart"), &all.template, &all.lag))
            .transpose()?,
        ejections: (!all.ejections.is_empty())
            .then(|| {
                charts::ejections(
                    &format!("{id}-ejections-chart"),
                    &all.template,
                    &all.ejections,
                )
            })
            .transpose()?,
    };
    let adoption_legend = charts::ADOPTION_SERIES
        .iter()
        .enumerate()
        .map(|(k, name)| (*name, charts::css_colour(k)))
        .collect();
    let versions_legend = teams
        .iter()
        .enumerate()
        .map(|(k, t)| (t.team.clone().unwrap_or_default(), charts::css_colour(k)))
        .collect();
    Ok(Section {
        id,
        all,
        teams,
        versions,
        charts,
        adoption_legend,
        versions_legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::aggregate::{
        EjectedFact, Files, ReleaseInfo, ServiceFacts, TemplateInfo, Upgrade, report,
    };

    fn d(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    fn v(s: &str) -> semver::Version {
        s.parse().unwrap()
    }

    fn templates() -> Vec<TemplateInfo> {
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

    fn service(name: &str, team: &str, upgraded: Option<&str>) -> ServiceFacts {
        let upgrades: Vec<Upgrade> = upgraded
            .map(|date| Upgrade {
                date: d(date),
                from: v("1.0.0"),
                to: v("2.0.0"),
                files: Some(Files {
                    updated: 7,
                    merged: 1,
                    conflicts: 0,
                }),
            })
            .into_iter()
            .collect();
        ServiceFacts {
            name: name.into(),
            location: format!("./{name}"),
            team: Some(team.into()),
            template: "service".into(),
            version: if upgrades.is_empty() {
                v("1.0.0")
            } else {
                v("2.0.0")
            },
            observed: d("2026-09-01"),
            created: Some(d("2026-01-15")),
            upgrades,
            ejected: vec![],
            local_edits: vec!["Cargo.toml".into()],
            policy_errors: vec![],
            pending_required: vec![],
        }
    }

    /// Three services of two teams (one named like markup), one ejection whose reason is a
    /// script, one skipped entry.
    fn page() -> String {
        let a = service("a", "payments", Some("2026-03-20"));
        let b = service("b", "payments", None);
        let mut c = service("c", "<i>ledger</i>", Some("2026-05-02"));
        c.ejected.push(EjectedFact {
            component: "au<th>".into(),
            reason: Some("<script>alert('x')</script> & \"SSO\"".into()),
            date: Some(d("2026-02-01")),
        });
        let skipped = vec![crate::report::fleet::SkippedEntry {
            location: "./<broken>".into(),
            reason: "platform.toml: <b>not TOML</b>".into(),
        }];
        let r = report(&[a, b, c], &templates(), d("2026-08-15"), skipped);
        let mut out = Vec::new();
        r.html(&[], &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_empty_fleet_is_a_page_that_says_so() {
        let r = report(&[], &templates(), d("2026-08-15"), vec![]);
        let mut out = Vec::new();
        r.html(&[], &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(html.contains("No service existed on 2026-08-15."), "{html}");
        assert!(html.contains("Every service is within policy."), "{html}");
        assert!(html.contains("Every entry was read."), "{html}");
        assert!(!html.contains("Campaigns in progress"), "{html}");
        assert!(!html.contains("<svg"), "{html}");
    }

    #[test]
    fn strings_from_manifests_are_escaped() {
        let html = page();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<i>ledger"), "{html}");
        assert!(!html.contains("<b>not TOML"), "{html}");
        assert!(
            html.contains(
                "&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; &quot;SSO&quot; (1)"
            ),
            "{html}"
        );
        assert!(
            html.contains("<td>&lt;i&gt;ledger&lt;&#x2f;i&gt;</td>"),
            "{html}"
        );
        assert!(html.contains(".&#x2f;&lt;broken&gt;"), "{html}");
        // A component name is a label in the ejections chart: plotters escapes it there.
        assert!(!html.contains("<th>"), "{html}");
        assert!(html.contains(">\nau&lt;th&gt;\n</text>"), "{html}");
    }

    #[test]
    fn the_page_is_self_contained_and_deterministic() {
        let html = page();
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.ends_with("</html>\n"));
        for fetches in [
            "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
        ] {
            assert!(!html.contains(fetches), "{fetches} in {html}");
        }
        // The only address is the SVG namespace, which is a name, never fetched.
        let addresses = html.matches("http").count();
        assert_eq!(
            addresses,
            html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
        assert_eq!(html, page(), "same report, same bytes");
    }

    #[test]
    fn every_chart_is_a_titled_figure_with_its_table_and_bars() {
        let html = page();
        for (id, title) in [
            (
                "t0-adoption-chart",
                "Adoption of template service over time",
            ),
            (
                "t0-versions-chart",
                "Services on each release of template service",
            ),
            ("t0-lag-chart", "Version lag of template service"),
            (
                "t0-ejections-chart",
                "Ejections by component of template service",
            ),
        ] {
            let at = html
                .find(&format!("<svg id=\"{id}\" role=\"img\""))
                .unwrap_or_else(|| panic!("{id}: {html}"));
            let svg = &html[at..at + html[at..].find("</svg>").unwrap()];
            assert!(
                svg.contains(&format!("<title id=\"{id}-title\">{title}</title>")),
                "{svg}"
            );
            assert!(
                svg.contains(&format!("aria-labelledby=\"{id}-title {id}-desc\"")),
                "{svg}"
            );
            let figure = html[..at].rfind("<figure").unwrap();
            assert!(html[figure..at].contains("<figcaption"), "{id}");
            let series = (0..7).map(charts::css_colour).collect::<Vec<_>>();
            let coloured = svg
                .lines()
                .filter(|l| series.iter().any(|c| l.contains(&format!("fill=\"{c}\""))))
                .collect::<Vec<_>>();
            match id {
                // 8 points (Jan..Jul, then 08-15) × 2 series; both lines drawn.
                "t0-adoption-chart" => {
                    assert_eq!(
                        coloured.iter().filter(|l| l.starts_with("<circle")).count(),
                        16,
                        "{svg}"
                    );
                    assert_eq!(
                        svg.lines()
                            .filter(|l| l.starts_with("<polyline")
                                && series
                                    .iter()
                                    .any(|c| l.contains(&format!("stroke=\"{c}\""))))
                            .count(),
                        2,
                        "{svg}"
                    );
                }
                // 1.0.0: payments 1; 2.0.0: payments 1 and the other team 1.
                "t0-versions-chart" => assert_eq!(coloured.len(), 3, "{svg}"),
                // 0 behind: 2 services, 1 behind: 1.
                "t0-lag-chart" => assert_eq!(coloured.len(), 2, "{svg}"),
                "t0-ejections-chart" => assert_eq!(coloured.len(), 1, "{svg}"),
                _ => unreachable!(),
            }
            let table = &html[at..];
            let table = &table[table.find("<table").unwrap()..];
            assert!(
                table.find("</table>").unwrap() < table.find("</figure>").unwrap(),
                "{id}: the table is under the chart, in its figure"
            );
        }
    }
}
