//! Reads `probe.interfaces` and the `[probe.capture]` table of a live capture.

use imsitrace::pipeline::live::options::{MAX_BUFFER_MIB, MAX_SNAPLEN, MIN_SNAPLEN};
use imsitrace::pipeline::live::LiveOptions;

use super::table::Section;

/// Reads the live capture settings of `[probe]`: `None` without `probe.interfaces`.
/// A `[probe.capture]` table without interfaces is a problem, since it would be ignored.
pub fn read_live(section: &mut Section<'_>) -> Option<LiveOptions> {
    let interfaces = section.list("interfaces").unwrap_or_default();
    // A node service may start before its capture interfaces are up, so it waits for them.
    let mut options = LiveOptions { interfaces, wait_for_interfaces: true, ..LiveOptions::default() };
    let had_table = match section.table("capture", "probe.capture") {
        Some(mut table) => {
            read_capture_table(&mut table, &mut options);
            report_table_problems(&mut table, &options);
            table.finish();
            true
        }
        None => false,
    };
    if options.interfaces.is_empty() {
        if had_table {
            let message = "[probe.capture] needs probe.interfaces: give the interfaces to capture on, e.g. interfaces = [\"eth0\"]";
            section.problem("capture", message.into());
        }
        return None;
    }
    for (key, message) in options.problems() {
        if key == "interfaces" {
            section.problem("interfaces", message);
        }
    }
    Some(options)
}

/// Adds the problems of the `[probe.capture]` values that a typed read does not check.
fn report_table_problems(table: &mut Section<'_>, options: &LiveOptions) {
    for (key, message) in options.problems() {
        match key {
            "restart" => table.problem("restart_max", message),
            // Interfaces belong to [probe]; snaplen and buffer_mib were range-checked when read.
            "interfaces" | "snaplen" | "buffer_mib" => {}
            key => table.problem(key, message),
        }
    }
}

/// Reads every key of `[probe.capture]` into `options`, keeping the default of each
/// missing or invalid one.
fn read_capture_table(table: &mut Section<'_>, options: &mut LiveOptions) {
    if let Some(snaplen) = table.number("snaplen", u64::from(MIN_SNAPLEN), u64::from(MAX_SNAPLEN)) {
        options.snaplen = snaplen as u32;
    }
    if let Some(buffer_mib) = table.number("buffer_mib", 1, u64::from(MAX_BUFFER_MIB)) {
        options.buffer_mib = buffer_mib as u32;
    }
    if let Some(immediate) = table.bool("immediate") {
        options.immediate = immediate;
    }
    if let Some(read_timeout) = table.duration("read_timeout") {
        options.read_timeout = read_timeout;
    }
    if let Some(promiscuous) = table.bool("promiscuous") {
        options.promiscuous = promiscuous;
    }
    options.filter = table.string("filter");
    if let Some(stats_interval) = table.duration("stats_interval") {
        options.stats_interval = stats_interval;
    }
    if let Some(restart_min) = table.duration("restart_min") {
        options.restart_min = restart_min;
    }
    if let Some(restart_max) = table.duration("restart_max") {
        options.restart_max = restart_max;
    }
}
