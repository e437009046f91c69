//! Line charts drawn on the server as inline SVG: the overview needs no script and
//! no chart library, and a chart is as readable in a screenshot as in a browser.

use maud::{html, Markup, PreEscaped};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// One line: a name for the legend and its points (Unix seconds, value).
pub struct Series {
    pub name: String,
    pub points: Vec<(i64, f64)>,
}

/// A chart of `series` from `from` to `to` (Unix seconds), values from 0 up; each
/// series takes the colour of its place (CSS classes `s0`…`s7`).
pub fn line_chart(label: &str, from: i64, to: i64, series: &[Series]) -> Markup {
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max);
    let top = nice_ceiling(top);
    let span = (to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span * (WIDTH - LEFT - 4.0);
    let y = |v: f64| TOP + (1.0 - v / top) * (HEIGHT - TOP - BOTTOM);
    let minutes = (to - from) / 60;
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label) {
                @for step in 0..=2 {
                    @let value = top * f64::from(step) / 2.0;
                    line.grid x1=(LEFT) x2=(WIDTH - 4.0) y1=(y(value)) y2=(y(value)) {}
                    text.axis x=(LEFT - 6.0) y=(y(value) + 4.0) text-anchor="end" { (format_value(value)) }
                }
                text.axis x=(LEFT) y=(HEIGHT - 4.0) { "−" (minutes) " min" }
                text.axis x=(WIDTH - 4.0) y=(HEIGHT - 4.0) text-anchor="end" { "now" }
                @for (place, line) in series.iter().enumerate() {
                    @let points = line.points.iter()
                        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                        .collect::<Vec<_>>().join(" ");
                    polyline class=(format!("line s{}", place % 8)) points=(points) {}
                    // A lone point draws no line: mark it.
                    @if let [(t, v)] = line.points.as_slice() {
                        circle class=(format!("dot s{}", place % 8)) cx=(format!("{:.1}", x(*t))) cy=(format!("{:.1}", y(*v))) r="3" {}
                    }
                }
            }
            figcaption {
                (label)
                @for (place, line) in series.iter().enumerate() {
                    " " span class=(format!("key s{}", place % 8)) { (PreEscaped("&#9632;")) } " " (line.name)
                }
            }
        }
    }
}

/// The smallest of 1, 2 or 5 × 10ⁿ at or above `value` (1 for nothing), so the
/// axis reads in round numbers.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

fn format_value(value: f64) -> String {
    if value >= 10.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(2000.0), 2000.0);
    }

    #[test]
    fn every_series_is_drawn_and_named() {
        let chart = line_chart(
            "jobs/s",
            0,
            3600,
            &[
                Series {
                    name: "succeeded".into(),
                    points: vec![(0, 1.0), (3600, 4.0)],
                },
                Series {
                    name: "failed".into(),
                    points: vec![(1800, 2.0)],
                },
            ],
        )
        .into_string();
        assert_eq!(chart.matches("<polyline").count(), 2);
        assert!(chart.contains("succeeded") && chart.contains("failed"));
        assert!(
            chart.contains(r#"points="56.0,128.0 636.0,38.0""#),
            "{chart}"
        );
    }
}
