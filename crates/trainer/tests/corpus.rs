//! The bad-input corpus (`tests/corpus/cases.toml` at the repository root): every case runs the
//! `gatecast` binary and must exit with the expected code (2 for bad input), print each expected
//! fragment on standard error, never panic and never hang. Beside it, the shipped experiment
//! files (`examples/configs/`) must be valid and every one the documents name must exist.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatecast_trainer::config::Experiment;
use gatecast_trainer::run;

/// Longest a case may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(serde::Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    extra: Vec<String>,
    #[serde(default)]
    damage: Vec<String>,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default = "two")]
    exit: i32,
}

fn two() -> i32 {
    2
}

/// This package's directory. `cargo test` sets `CARGO_MANIFEST_DIR` when it runs a test, naming
/// the checkout under test even when a shared target directory reuses a binary compiled in
/// another checkout, whose path `env!` would have baked in.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn corpus() -> PathBuf {
    manifest_dir().join("../../tests/corpus")
}

/// `base.toml` with `data.path` made absolute and `overlay` laid over it, section by section.
fn merged_config(case: &Case) -> String {
    let dir = corpus();
    let mut base: toml::Table = std::fs::read_to_string(dir.join("base.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let data = base["data"].as_table_mut().unwrap();
    let file = case.data.as_deref().unwrap_or("good.csv");
    data.insert("path".into(), dir.join(file).display().to_string().into());
    if let Some(text) = &case.config {
        let overlay: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: config: {e}", case.name));
        for (section, values) in overlay {
            let target = base
                .entry(section)
                .or_insert_with(|| toml::Table::new().into())
                .as_table_mut()
                .unwrap();
            for (k, v) in values.as_table().unwrap() {
                let v = match (k.as_str(), v.as_str()) {
                    // A relative data path in an overlay is relative to the scratch folder, so
                    // that it names a file that does not exist.
                    ("path", Some(p)) => p.into(),
                    _ => v.clone(),
                };
                target.insert(k.clone(), v);
            }
        }
    }
    toml::to_string(&base).unwrap()
}

/// A case of `base.toml` as it is, on `good.csv`.
fn plain_case(name: &str) -> Case {
    Case {
        name: name.into(),
        data: None,
        config: None,
        args: None,
        extra: vec![],
        damage: vec![],
        expect: vec![],
        exit: 0,
    }
}

/// A small trained run, made once and copied per case.
fn trained_run(scratch: &Path) -> PathBuf {
    let dir = scratch.join("trained");
    let text = merged_config(&plain_case("trained"));
    let mut exp = Experiment::from_toml(&text, "base.toml").unwrap();
    exp.train.epochs = 2;
    run::train(&exp, &dir, &[burn::tensor::Device::flex()], false, true).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn damage(run: &Path, edit: &str) {
    let (op, rest) = edit.split_once(' ').unwrap();
    let (file, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    let path = run.join(file);
    match op {
        "truncate" => {
            let bytes = std::fs::read(&path).unwrap();
            let n: usize = arg.parse().unwrap();
            assert!(n < bytes.len(), "{edit}: file has {} bytes", bytes.len());
            std::fs::write(&path, &bytes[..n]).unwrap();
        }
        "garbage" => {
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            let mut rng = gatecast_data::synthetic::Rng::new(5);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.uniform() * 256.0) as u8).collect();
            std::fs::write(&path, bytes).unwrap();
        }
        "remove" if path.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
        "remove" => std::fs::remove_file(&path).unwrap(),
        "write" => std::fs::write(&path, arg).unwrap(),
        "edit" => {
            let (old, new) = arg.split_once(" => ").unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(old), "{edit}: '{old}' not in {file}");
            std::fs::write(&path, text.replace(old, new)).unwrap();
        }
        _ => panic!("unknown damage '{edit}'"),
    }
}

/// Runs the binary, killing it after [`LIMIT`].
fn run_bin(args: &[String], cwd: &Path) -> (Option<i32>, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatecast"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let start = Instant::now();
    let (code, hung) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status.code(), false);
        }
        if start.elapsed() > LIMIT {
            child.kill().ok();
            child.wait().ok();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, reader.join().unwrap(), hung)
}

#[test]
fn every_bad_input_fails_clearly_with_exit_code_2() {
    let dir = corpus();
    let cases: Cases =
        toml::from_str(&std::fs::read_to_string(dir.join("cases.toml")).unwrap()).unwrap();
    let scratch = std::env::temp_dir().join(format!("gatecast-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let trained = trained_run(&scratch);
    let mut failures = Vec::new();
    let bad = cases.case.iter().filter(|c| c.exit == 2).count();
    assert!(bad >= 40, "the corpus has only {bad} bad inputs");
    for (i, case) in cases.case.iter().enumerate() {
        let tmp = scratch.join(format!("case{i}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let config = tmp.join("config.toml");
        std::fs::write(&config, merged_config(case)).unwrap();
        let run_copy = tmp.join("run-copy");
        let args: Vec<String> = match &case.args {
            Some(a) => a.clone(),
            None => {
                let mut a: Vec<String> = ["train", "--config", "{config}", "--out", "{tmp}/run"]
                    .map(String::from)
                    .to_vec();
                a.extend(case.extra.iter().cloned());
                a.push("--quiet".into());
                a
            }
        };
        if args.iter().any(|a| a.contains("{run}")) {
            copy_dir(&trained, &run_copy);
            for d in &case.damage {
                damage(&run_copy, d);
            }
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("{config}", &config.display().to_string())
                    .replace("{tmp}", &tmp.display().to_string())
                    .replace("{run}", &run_copy.display().to_string())
                    .replace("{corpus}", &dir.display().to_string())
            })
            .collect();
        let (code, stderr, hung) = run_bin(&args, &tmp);
        let missing: Vec<&String> = case
            .expect
            .iter()
            .filter(|f| !stderr.contains(f.as_str()))
            .collect();
        if hung || code != Some(case.exit) || !missing.is_empty() || stderr.contains("panicked") {
            failures.push(format!(
                "{}: exit {code:?} (want {}), hung {hung}, missing {missing:?}\n  {args:?}\n  stderr: {}",
                case.name,
                case.exit,
                stderr.trim()
            ));
        }
    }
    eprintln!(
        "{} corpus cases ({bad} bad inputs), {} failed",
        cases.case.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The experiment files the repository ships (`examples/configs/`) are what the README's and
/// docs' commands run: each must parse and validate as `gatecast` reads it, and every such file
/// the documents name must exist, so a renamed or mistyped file fails here, not for a user.
#[test]
fn every_shipped_experiment_file_validates_and_every_named_one_exists() {
    let root = manifest_dir().join("../..");
    let dir = root.join("examples/configs");
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = Experiment::from_toml(&text, &name) {
                panic!("examples/configs/{name} does not validate: {e}");
            }
            shipped.push(name);
        }
    }
    assert!(
        shipped.len() >= 2,
        "found only {shipped:?} in {}",
        dir.display()
    );

    // README.md and every Markdown file under docs/, its subfolders (docs/design/) included.
    let mut documents = vec![root.join("README.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                documents.push(path);
            }
        }
    }
    assert!(
        !root.join("docs/design").is_dir()
            || documents
                .iter()
                .any(|d| d.starts_with(root.join("docs/design"))),
        "the document walk missed docs/design/: {documents:?}"
    );
    let mut named = 0;
    for doc in &documents {
        let text = std::fs::read_to_string(doc).unwrap();
        for (at, _) in text.match_indices("examples/configs/") {
            let rest = &text[at + "examples/configs/".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
                .unwrap_or(rest.len());
            let name = rest[..end].trim_end_matches('.');
            if !name.ends_with(".toml") {
                continue;
            }
            named += 1;
            assert!(
                shipped.iter().any(|s| s == name),
                "{} names examples/configs/{name}, which is not there",
                doc.display()
            );
        }
    }
    assert!(named > 0, "no document names an experiment file");
}

/// A reader of standard output or standard error that goes away (`gatecast train | head -1`,
/// `gatecast train 2>&1 | head -1`) must not cost the run: `println!` and `eprintln!` panicked
/// on the broken pipe (exit 101) before `model.bpk` was written.
#[test]
fn a_closed_output_pipe_does_not_lose_the_run() {
    let scratch = std::env::temp_dir().join(format!("gatecast-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // A file with a missing value under the interpolate policy, so that the run also writes a
    // note to standard error.
    let mut case = plain_case("pipe");
    case.data = Some("csv/nan.csv".into());
    case.config = Some("data.missing = \"interpolate\"".into());
    let config = scratch.join("config.toml");
    std::fs::write(&config, merged_config(&case)).unwrap();
    let run = |args: &[String], close_stderr: bool| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatecast"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading ends before the binary writes anything.
        drop(child.stdout.take());
        if close_stderr {
            drop(child.stderr.take());
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "{args:?}: {:?}\n{stderr}",
            out.status.code()
        );
        stderr
    };
    for (dir, close_stderr) in [("run", false), ("run_quiet", true)] {
        let dir = scratch.join(dir).display().to_string();
        let train = [
            "train",
            "--config",
            &config.display().to_string(),
            "--out",
            &dir,
        ];
        let stderr = run(&train.map(String::from), close_stderr);
        if !close_stderr {
            assert!(stderr.contains("1 missing value(s) filled"), "{stderr}");
        }
        let run_dir = Path::new(&dir);
        assert!(run_dir.join("model.bpk").exists() && run_dir.join("test_metrics.csv").exists());
        run(&["evaluate".to_string(), dir.clone()], close_stderr);
    }
    std::fs::remove_dir_all(&scratch).ok();
}

/// `--calendar` sets `data.calendar` from the command line, in the order given; `none` clears it.
#[test]
fn the_calendar_flag_sets_and_clears_the_calendar_features() {
    let calendar = |flag: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_gatecast"))
            .args(["train", "--calendar", flag, "--print-config"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let exp = Experiment::from_toml(&String::from_utf8(out.stdout).unwrap(), "stdout").unwrap();
        exp.data.calendar
    };
    use gatecast_data::Calendar;
    assert_eq!(
        calendar("day_of_week,hour_of_day"),
        [Calendar::DayOfWeek, Calendar::HourOfDay]
    );
    assert_eq!(calendar("month_of_year"), [Calendar::MonthOfYear]);
    assert!(calendar("none").is_empty());
}
