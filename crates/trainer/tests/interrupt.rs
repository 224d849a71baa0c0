//! A training process killed with SIGKILL mid-epoch, twice: every checkpoint left on disk is
//! whole, `gatecast train --resume` continues from the last finished epoch (losing at most the
//! epoch in progress), and the finished run has each epoch exactly once.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use gatecast_trainer::checkpoint::{checkpoint_epochs, damage, last_intact};

mod common;

const EPOCHS: usize = 6;

/// Starts `gatecast train`; the receiver gets each finished epoch's number and when it came.
fn start(args: &[&str], cwd: &Path) -> (Child, Receiver<(usize, Instant)>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            // Per-epoch lines: epoch, losses, MAE, lr, grad norm, seconds, ETA.
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() == 8 {
                if let Ok(epoch) = fields[0].parse::<usize>() {
                    tx.send((epoch, Instant::now())).ok();
                }
            }
        }
    });
    (child, rx)
}

/// Waits for epoch `until` to finish, then kills the process half an epoch later (mid-epoch).
fn kill_mid_epoch(mut child: Child, rx: &Receiver<(usize, Instant)>, until: usize) -> usize {
    let mut seen: Vec<(usize, Instant)> = Vec::new();
    while seen.last().map(|s| s.0) != Some(until) {
        let got = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("an epoch finishes");
        seen.push(got);
    }
    let per_epoch = match seen.as_slice() {
        [.., a, b] => b.1 - a.1,
        _ => Duration::from_millis(400),
    };
    eprintln!("epoch {until} took {per_epoch:?}; killing half an epoch later");
    std::thread::sleep(per_epoch / 2);
    // Epochs that finished before the kill (the renderer prints at the end of each).
    while let Ok(got) = rx.try_recv() {
        seen.push(got);
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    seen.last().unwrap().0
}

fn check_checkpoints(run: &Path, finished: usize) -> usize {
    let epochs = checkpoint_epochs(run);
    assert!(!epochs.is_empty());
    for &e in &epochs {
        assert_eq!(damage(run, e), None, "checkpoint {e} is whole");
    }
    let (last, skipped) = last_intact(run);
    assert!(skipped.is_empty());
    let last = last.unwrap();
    assert!(
        last >= finished,
        "checkpoint {last} but epoch {finished} had finished: more than the running epoch lost"
    );
    last
}

#[test]
fn sigkill_mid_epoch_then_resume_loses_at_most_one_epoch() {
    let dir: PathBuf = std::env::temp_dir().join(format!("gatecast-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    common::write_csv(&dir, 3000); // writes load.csv
    std::fs::write(
        dir.join("exp.toml"),
        format!(
            r#"[data]
path = "load.csv"
time_column = "time"
targets = ["load"]
covariates = []
calendar = []
[window]
lookback = 48
horizon = 12
stride = 1
[model]
cell = "lstm"
hidden_size = 48
[train]
epochs = {EPOCHS}
patience = {EPOCHS}
"#
        ),
    )
    .unwrap();
    let run = dir.join("run");
    let run_s = run.display().to_string();

    let (child, rx) = start(&["train", "--config", "exp.toml", "--out", &run_s], &dir);
    let finished = kill_mid_epoch(child, &rx, 2);
    let first = check_checkpoints(&run, finished);
    eprintln!("killed after epoch {finished} had finished; last checkpoint {first}");

    let (child, rx) = start(&["train", "--resume", "--out", &run_s], &dir);
    let finished = kill_mid_epoch(child, &rx, first + 1);
    let second = check_checkpoints(&run, finished);
    eprintln!("resumed, killed after epoch {finished}; last checkpoint {second}");
    assert!(second > first, "the resumed run made progress");

    common::gatecast_ok(&["train", "--resume", "--out", &run_s, "--quiet"], &dir);
    // metrics.csv: each epoch once, in order, to the end.
    let epochs: Vec<usize> = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(epochs, (1..=EPOCHS).collect::<Vec<_>>());
    common::gatecast_ok(&["evaluate", &run_s], &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
