//! What the load test's yardsticks share: their arguments and their table of links.

use std::collections::HashMap;

/// `<bind> <codes-file>` from the command line, and the file's `code url` lines as a
/// table; prints the usage and exits on missing arguments.
pub fn args_and_table(name: &str) -> std::io::Result<(String, HashMap<String, String>)> {
    let mut args = std::env::args().skip(1);
    let (Some(bind), Some(codes)) = (args.next(), args.next()) else {
        eprintln!("usage: {name} <bind> <codes-file>");
        std::process::exit(2);
    };
    let table = std::fs::read_to_string(codes)?
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(c, u)| (c.to_string(), u.to_string()))
        })
        .collect();
    Ok((bind, table))
}
