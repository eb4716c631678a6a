//! Every tab with fixture data, at 80x24 (the smallest supported size) and 200x50.

mod common;

use brightrun_tui::fixtures;
use brightrun_tui::{Effect, Outcome, Tab};
use common::*;

fn snap(tab: Tab, w: u16, h: u16) -> String {
    let mut app = app();
    for fx in app.go_tab(tab) {
        if let Effect::Estimate { seq, .. } = fx {
            app.apply_outcome(Outcome::Estimate {
                seq,
                result: Ok(fixtures::estimate()),
            });
        }
    }
    render(&mut app, w, h)
}

macro_rules! tab_snapshots {
    ($($name:ident => $tab:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(concat!(stringify!($name), "_80x24"), snap($tab, 80, 24));
                insta::assert_snapshot!(concat!(stringify!($name), "_200x50"), snap($tab, 200, 50));
            }
        )*
    };
}

tab_snapshots!(
    datasets => Tab::Datasets,
    configure => Tab::Configure,
    jobs => Tab::Jobs,
    models => Tab::Models,
    costs => Tab::Costs,
    notifications => Tab::Notifications,
);

#[test]
fn dataset_with_problems_detail() {
    let mut app = app();
    // broken-export is the second newest; enter gives the detail pane the keys and the room.
    key(&mut app, crossterm::event::KeyCode::Down);
    key(&mut app, crossterm::event::KeyCode::Enter);
    insta::assert_snapshot!(render(&mut app, 100, 30));
}

#[test]
fn every_tab_fits_tiny_terminals_without_panicking() {
    for tab in Tab::ALL {
        for (w, h) in [(20, 5), (40, 10), (1, 1), (80, 3)] {
            let mut app = app();
            app.go_tab(tab);
            render(&mut app, w, h);
        }
    }
}
