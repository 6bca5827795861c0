//! The Grafana dashboard for `fleet report --format openmetrics`, shipped with the tool and
//! written beside the metrics by `--out` (`fleet-dashboard.json`). Its data source is the
//! `${datasource}` variable, so it imports into any Grafana with a Prometheus data source;
//! `$template` and `$team` filter it.

/// The dashboard's JSON (Grafana dashboard model, import it with Dashboards → New → Import).
pub const DASHBOARD: &str = include_str!("fleet-dashboard.json");

/// The file name `--out` writes it under.
pub const FILE_NAME: &str = "fleet-dashboard.json";

/// The OpenMetrics families deliberately not on the dashboard, with the reason (none today:
/// every family has a panel).
pub const NOT_ON_DASHBOARD: &[(&str, &str)] = &[];

/// Every PromQL expression of the dashboard's panels, with the panel's title.
pub fn expressions(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let panels = dashboard["panels"].as_array().into_iter().flatten();
    for panel in
        panels.flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
    {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    panel["title"].as_str().unwrap_or_default().to_string(),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::report::fleet_report::FleetReport;

    fn dashboard() -> serde_json::Value {
        serde_json::from_str(DASHBOARD).expect("the dashboard is JSON")
    }

    /// The metric names an expression reads.
    fn series(expr: &str) -> BTreeSet<String> {
        regex::Regex::new(r"\bplatform_fleet_[a-z_]+\b")
            .unwrap()
            .find_iter(expr)
            .map(|m| m.as_str().to_string())
            .collect()
    }

    /// The families `--format openmetrics` emits (every family has its `# TYPE` line, even with
    /// no sample).
    fn emitted() -> BTreeSet<String> {
        let report = FleetReport::new("2027-01-01".into(), 0, vec![], vec![], vec![]);
        let mut out = Vec::new();
        report.openmetrics(&mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_dashboard_queries_only_emitted_series_and_shows_every_family() {
        let exprs = expressions(&dashboard());
        assert!(exprs.len() >= 6, "{exprs:?}");
        let emitted = emitted();
        assert!(emitted.contains("platform_fleet_ejections"), "{emitted:?}");
        let mut queried = BTreeSet::new();
        for (title, expr) in &exprs {
            let names = series(expr);
            assert!(!names.is_empty(), "{title}: `{expr}` reads no fleet series");
            for name in names {
                assert!(
                    emitted.contains(&name),
                    "{title}: `{expr}` queries {name}, which fleet report does not emit"
                );
                queried.insert(name);
            }
        }
        let left_out: BTreeSet<String> = NOT_ON_DASHBOARD
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let missing: BTreeSet<&String> = emitted
            .iter()
            .filter(|f| !queried.contains(*f) && !left_out.contains(*f))
            .collect();
        assert!(
            missing.is_empty(),
            "families on no panel (add a panel or list them in NOT_ON_DASHBOARD): {missing:?}"
        );
        for name in &left_out {
            assert!(
                !queried.contains(name),
                "{name} is listed as left out but queried"
            );
        }
    }

    #[test]
    fn the_dashboard_has_the_panels_leaders_ask_for() {
        let titles: Vec<String> = expressions(&dashboard())
            .into_iter()
            .map(|(t, _)| t.to_lowercase())
            .collect();
        for topic in [
            "adoption share",
            "versions by team",
            "lag",
            "ejections",
            "out of policy",
            "release reach",
        ] {
            assert!(
                titles.iter().any(|t| t.contains(topic)),
                "no panel on {topic}: {titles:?}"
            );
        }
    }

    #[test]
    fn the_data_source_and_the_filters_are_variables() {
        let d = dashboard();
        let vars = d["templating"]["list"].as_array().unwrap();
        let var = |name: &str| {
            vars.iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("no variable {name}"))
        };
        assert_eq!(var("datasource")["type"], "datasource");
        assert_eq!(var("datasource")["query"], "prometheus");
        for name in ["template", "team"] {
            assert_eq!(var(name)["type"], "query");
            assert_eq!(var(name)["datasource"]["uid"], "${datasource}");
        }
        // Every data source reference in the dashboard is the variable: none is hard-coded.
        fn walk(v: &serde_json::Value, found: &mut Vec<serde_json::Value>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        if k == "datasource" && v.is_object() {
                            found.push(v.clone());
                        }
                        walk(v, found);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        walk(&d, &mut found);
        assert!(found.len() > 10, "{found:?}");
        for ds in found {
            assert_eq!(ds["uid"], "${datasource}", "{ds}");
        }
        // Expressions use only the variables the dashboard defines.
        let defined: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
        let used = regex::Regex::new(r"\$\{?([a-z_]+)").unwrap();
        for (title, expr) in expressions(&d) {
            for c in used.captures_iter(&expr) {
                assert!(defined.contains(&c[1]), "{title}: `{expr}` uses ${}", &c[1]);
            }
        }
    }
}
