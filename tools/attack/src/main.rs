//! `attack [--stack DIR]`: an adversarial run against a running local stack; prints the
//! figures and exits non-zero when anything was wrongly accepted, answered 5xx or not at
//! all, lost, duplicated, or panicked.

use wxbridge_devstack::cli::{fail, take_option};
use wxbridge_devstack::stack::Stack;

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let stack = take_option(&mut args, "--stack");
    let stack = Stack::load(stack.as_deref()).unwrap_or_else(|e| fail(e));
    let target = wxbridge_attack::target::Target::new(stack).unwrap_or_else(|e| fail(e));
    let report = wxbridge_attack::run(&target)
        .await
        .unwrap_or_else(|e| fail(e));
    print!("{}", report.render());
    if !report.clean() {
        std::process::exit(1);
    }
}
