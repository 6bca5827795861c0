//! The HTML fleet report's charts, drawn as inline SVG by plotters.
//!
//! Why plotters and not a JavaScript charting library: the page must work with no network and
//! without JavaScript (a leader may open it from a mail attachment, a wiki, or a locked-down
//! browser), and its bytes must be the same for the same input so reports diff cleanly. plotters'
//! SVG backend renders in Rust at report time into plain `<svg>` text (no fonts, files or
//! scripts needed: `default-features = false`, only `svg_backend` and `line_series`), whereas a
//! vendored JS library would add tens of kilobytes of code we would have to keep up to date and
//! a page that shows nothing until a script runs.
//!
//! Every chart is an `<svg role="img">` with a `<title>` and a `<desc>` (what it shows, and that
//! its numbers are in the table under it); every text plotters writes into the SVG (team and
//! component names) is XML-escaped by plotters' SVG backend.

use std::io;

use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;

use super::fleet_report::{AdoptionPoint, Ejections, Group, Lag};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 340;
const FONT: &str = "sans-serif";

/// Series colours: colour-blind safe (Okabe–Ito), in order.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
];

/// The colour of series `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The colour of series `i` as CSS (`#RRGGBB`), for the legend the page shows under a chart
/// (in HTML, so screen readers and text search see the series' names).
pub fn css_colour(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// The adoption chart's series, in colour order.
pub const ADOPTION_SERIES: [&str; 2] = ["on a supported release", "on the newest release"];

fn failed(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("cannot draw a chart: {e}"))
}

/// `svg` (one document from plotters) given an id, `role="img"`, a `<title>` and a `<desc>`.
fn accessible(svg: String, id: &str, title: &str, desc: &str) -> String {
    let title = minijinja::HtmlEscape(title).to_string();
    let desc = minijinja::HtmlEscape(desc).to_string();
    let head_end = svg.find(">\n").map_or(svg.len(), |i| i + 2);
    let (head, body) = svg.split_at(head_end);
    let head = head.replacen(
        "<svg ",
        &format!(
            "<svg id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" class=\"chart\" "
        ),
        1,
    );
    format!(
        "{head}<title id=\"{id}-title\">{title}</title>\n<desc id=\"{id}-desc\">{desc}</desc>\n{body}"
    )
}

/// Runs `draw` on a fresh SVG canvas and returns the SVG text.
fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> io::Result<()>,
) -> io::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        draw(&root)?;
        root.present().map_err(failed)?;
    }
    Ok(text)
}

/// Slot `i` of an x axis is centred on `i * SLOT`.
const SLOT: i32 = 10;

/// An x axis with `n` slots, labelled at their centres only.
fn slots(n: usize) -> WithKeyPoints<RangedCoordi32> {
    let n = n.max(1) as i32;
    (-SLOT / 2..n * SLOT - SLOT / 2).with_key_points((0..n).map(|i| i * SLOT).collect())
}

/// The label of slot `x` (a key point of `slots`).
fn slot_label(labels: &[String], x: i32) -> String {
    usize::try_from(x / SLOT)
        .ok()
        .and_then(|i| labels.get(i))
        .cloned()
        .unwrap_or_default()
}

/// A value axis from 0 to a little over `max` (at least 1).
fn top(max: usize) -> u32 {
    (max.max(1) as u32) + 1
}

/// Adoption over time: the share of services on the newest release and on a supported release
/// at each point, in percent.
pub fn adoption(id: &str, template: &str, points: &[AdoptionPoint]) -> io::Result<String> {
    let text = svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(slots(points.len()), 0f64..100f64)
            .map_err(failed)?;
        let dates: Vec<String> = points.iter().map(|p| p.date.clone()).collect();
        let label = |x: &i32| slot_label(&dates, *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&label)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0} %"))
            .y_desc("share of services")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(failed)?;
        let series: [fn(&AdoptionPoint) -> f64; 2] = [
            |p| p.on_supported_share * 100.0,
            |p| p.on_newest_share * 100.0,
        ];
        for (k, value) in series.into_iter().enumerate() {
            let c = colour(k);
            let at: Vec<(i32, f64)> = points
                .iter()
                .enumerate()
                .map(|(i, p)| (i as i32 * SLOT, value(p)))
                .collect();
            chart
                .draw_series(LineSeries::new(at.clone(), c.stroke_width(3)))
                .map_err(failed)?;
            chart
                .draw_series(at.into_iter().map(|p| Circle::new(p, 4, c.filled())))
                .map_err(failed)?;
        }
        Ok(())
    })?;
    Ok(accessible(
        text,
        id,
        &format!("Adoption of template {template} over time"),
        "Line chart: the share of services on a supported release and on the newest release at \
         the end of each month, then on the report's date. The numbers are in the table below.",
    ))
}

/// Bars at `labels` (one per x position) stacked from `stacks`: one value per label for each
/// series, series `k` in `colour(k)`. Only the bars are in the series' colours (no legend: the
/// page shows it in HTML).
fn bars(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    labels: &[String],
    stacks: &[Vec<usize>],
    x_desc: &str,
) -> io::Result<()> {
    let totals: Vec<usize> = (0..labels.len())
        .map(|i| stacks.iter().map(|v| v[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(slots(labels.len()), 0u32..top(max))
        .map_err(failed)?;
    let label = |x: &i32| slot_label(labels, *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_label_formatter(&label)
        .y_label_formatter(&|v| format!("{v}"))
        .y_desc("services")
        .x_desc(x_desc)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(failed)?;
    let mut base = vec![0u32; labels.len()];
    for (k, values) in stacks.iter().enumerate() {
        let c = colour(k);
        let rects: Vec<Rectangle<(i32, u32)>> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0)
            .map(|(i, v)| {
                let from = base[i];
                base[i] += *v as u32;
                let x = i as i32 * SLOT;
                Rectangle::new([(x - 3, from), (x + 3, base[i])], c.filled())
            })
            .collect();
        chart.draw_series(rects).map_err(failed)?;
    }
    Ok(())
}

/// The version distribution: services on each release, stacked by team.
pub fn versions(id: &str, all: &Group, teams: &[&Group]) -> io::Result<String> {
    let labels: Vec<String> = all.releases.iter().map(|r| r.version.clone()).collect();
    let stacks: Vec<Vec<usize>> = teams
        .iter()
        .map(|t| {
            all.releases
                .iter()
                .map(|r| {
                    t.releases
                        .iter()
                        .find(|x| x.version == r.version)
                        .map_or(0, |x| x.services_on)
                })
                .collect()
        })
        .collect();
    let text = svg(|root| bars(root, &labels, &stacks, "release"))?;
    Ok(accessible(
        text,
        id,
        &format!("Services on each release of template {}", all.template),
        "Stacked bar chart: how many services are on each release, by team. The numbers are in \
         the table below.",
    ))
}

/// The version-lag histogram: services by releases behind the newest.
pub fn lag(id: &str, template: &str, lag: &[Lag]) -> io::Result<String> {
    let labels: Vec<String> = lag.iter().map(|l| l.releases_behind.to_string()).collect();
    let stacks = vec![lag.iter().map(|l| l.services).collect()];
    let text = svg(|root| bars(root, &labels, &stacks, "releases behind the newest"))?;
    Ok(accessible(
        text,
        id,
        &format!("Version lag of template {template}"),
        "Bar chart: how many services are 0, 1, 2 or more releases behind the newest release. \
         The numbers are in the table below.",
    ))
}

/// Ejections by component: services that ejected each component.
pub fn ejections(id: &str, template: &str, ejections: &[Ejections]) -> io::Result<String> {
    let labels: Vec<String> = ejections.iter().map(|e| e.component.clone()).collect();
    let stacks = vec![ejections.iter().map(|e| e.services).collect()];
    let text = svg(|root| bars(root, &labels, &stacks, "ejected component"))?;
    Ok(accessible(
        text,
        id,
        &format!("Ejections by component of template {template}"),
        "Bar chart: how many services took each component off the golden path. The numbers and \
         the reasons given are in the table below.",
    ))
}
