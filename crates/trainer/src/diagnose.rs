//! `gatecast diagnose`: gradient flow through time and recurrent spectral norms of fresh layers.

use std::path::Path;

use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};
use gatecast_data::synthetic::adding_problem;
use gatecast_model::diagnostics::{hidden_gradient_norms, recurrent_spectral_norms, Probe};
use gatecast_model::{GruConfig, LstmConfig, RnnConfig};

use crate::artifacts::{write_atomic, write_csv};

/// Per cell: its name, `‖∂L/∂h_t‖` for each step, and the spectral norm of each recurrent gate block.
pub type Flow = Vec<(String, Vec<f64>, Vec<f64>)>;

/// Measures fresh (PyTorch-initialised) Elman RNN, GRU, LSTM and LSTM with forget-gate bias 1 on
/// a batch of adding-problem sequences of length `steps`, and writes `gradient_flow.csv`,
/// `gradient_flow.png` and `spectral_norms.csv` into `dir`.
pub fn diagnose(
    dir: &Path,
    steps: usize,
    hidden: usize,
    batch: usize,
    seed: u64,
    device: &Device,
) -> Result<Flow> {
    std::fs::create_dir_all(dir)?;
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let samples = adding_problem(batch, steps, seed);
    let data: Vec<f32> = samples
        .iter()
        .flat_map(|s| s.inputs.iter().copied())
        .collect();
    let x = Tensor::<3>::from_data(TensorData::new(data, [batch, steps, 2]), &ad);
    let rnn = RnnConfig::new(2, hidden).init(&ad);
    let gru = GruConfig::new(2, hidden).init(&ad);
    let lstm = LstmConfig::new(2, hidden).init(&ad);
    let lstm1 = LstmConfig::new(2, hidden).with_forget_bias(1.0).init(&ad);
    let flow: Flow = vec![
        (
            "rnn".into(),
            hidden_gradient_norms(Probe::Rnn(&rnn), x.clone()),
            recurrent_spectral_norms(Probe::Rnn(&rnn)),
        ),
        (
            "gru".into(),
            hidden_gradient_norms(Probe::Gru(&gru), x.clone()),
            recurrent_spectral_norms(Probe::Gru(&gru)),
        ),
        (
            "lstm".into(),
            hidden_gradient_norms(Probe::Lstm(&lstm), x.clone()),
            recurrent_spectral_norms(Probe::Lstm(&lstm)),
        ),
        (
            "lstm (forget_bias 1)".into(),
            hidden_gradient_norms(Probe::Lstm(&lstm1), x),
            recurrent_spectral_norms(Probe::Lstm(&lstm1)),
        ),
    ];
    let mut header = vec!["t".to_string()];
    header.extend(flow.iter().map(|(n, _, _)| n.replace(' ', "_")));
    let rows: Vec<Vec<String>> = (0..steps)
        .map(|t| {
            let mut r = vec![(t + 1).to_string()];
            r.extend(flow.iter().map(|(_, v, _)| format!("{:e}", v[t])));
            r
        })
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(&dir.join("gradient_flow.csv"), &header_refs, &rows)?;
    let mut spectral = String::from("cell,gate_blocks_largest_singular_value\n");
    for (name, _, s) in &flow {
        let values: Vec<String> = s.iter().map(|v| format!("{v:.4}")).collect();
        spectral += &format!("{name},{}\n", values.join(" "));
    }
    write_atomic(&dir.join("spectral_norms.csv"), spectral.as_bytes())?;
    let series: Vec<(String, Vec<f64>)> = flow
        .iter()
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .collect();
    crate::plots::gradient_flow(&dir.join("gradient_flow.png"), &series)?;
    Ok(flow)
}
