//! The theory, measured at initialisation: an Elman RNN's gradient vanishes across time steps;
//! an LSTM keeps it only once its forget gate starts open (forget-gate bias 1).

mod common;

use burn::tensor::{Distribution, Tensor};
use common::*;
use gatecast_model::diagnostics::{
    hidden_gradient_norms, recurrent_spectral_norms, spectral_norm, Probe,
};
use gatecast_model::{GruConfig, LstmConfig, RnnConfig};

const T: usize = 100;

fn input(device: &burn::tensor::Device) -> Tensor<3> {
    Tensor::random([16, T, 4], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn elman_gradient_vanishes_forget_biased_lstm_keeps_it() {
    let device = device().autodiff();
    device.seed(7);
    let rnn = RnnConfig::new(4, 32).init(&device);
    let gru = GruConfig::new(4, 32).init(&device);
    let lstm = LstmConfig::new(4, 32).init(&device);
    let x = input(&device);
    let ratio = |norms: &[f64]| norms[T - 1] / norms[0];
    let r = hidden_gradient_norms(Probe::Rnn(&rnn), x.clone());
    let g = hidden_gradient_norms(Probe::Gru(&gru), x.clone());
    let l = hidden_gradient_norms(Probe::Lstm(&lstm), x);
    eprintln!(
        "shrink from t=T to t=1: rnn {:.3e}, gru {:.3e}, lstm {:.3e}",
        ratio(&r),
        ratio(&g),
        ratio(&l)
    );
    for (name, n) in [("rnn", &r), ("gru", &g), ("lstm", &l)] {
        eprintln!(
            "{name}: t=T {:.3e}, T-10 {:.3e}, T-20 {:.3e}, T-50 {:.3e}, 1 {:.3e}",
            n[T - 1],
            n[T - 11],
            n[T - 21],
            n[T - 51],
            n[0]
        );
    }
    assert_eq!(r.len(), T);
    // f32 may underflow, making the Elman ratio infinite; "more than 100x" holds either way.
    assert!(ratio(&r) > 100.0, "Elman: {:.3e}", ratio(&r));
    // At PyTorch's initialisation the LSTM is NOT reliably better: its forget gate starts at
    // σ(≈0) ≈ 0.5, so its gradient also decays geometrically (measured: within a factor of a few
    // of the Elman RNN's per step; see the README). So no assertion that it "shrinks less" here.
    assert!(
        ratio(&l) > 100.0,
        "default LSTM decays too: {:.3e}",
        ratio(&l)
    );
    // With PyTorch's initialisation the forget gate starts half open (f ≈ 0.5), so the LSTM's
    // gradient still decays geometrically. A forget-gate bias of 1 keeps far more of it.
    let open = LstmConfig::new(4, 32).with_forget_bias(1.0).init(&device);
    let o = hidden_gradient_norms(Probe::Lstm(&open), input(&device));
    eprintln!(
        "lstm forget_bias 1: t=T {:.3e}, T-10 {:.3e}, T-20 {:.3e}, T-50 {:.3e}, 1 {:.3e}",
        o[T - 1],
        o[T - 11],
        o[T - 21],
        o[T - 51],
        o[0]
    );
    assert!(
        o[T - 51] / o[T - 1] > 1e3 * (l[T - 51] / l[T - 1]),
        "forget bias 1 keeps more gradient over 50 steps"
    );
    assert!(ratio(&o) < 1e-6 * ratio(&l));
    assert!(ratio(&o) < 1e-6 * ratio(&r));
    // Geometric decay: each 10 steps further back, smaller, until f32 underflows.
    for t in (10..T).step_by(10).filter(|t| r[*t - 10] > 0.0) {
        assert!(r[t - 10] < r[t], "t={t}");
    }
}

#[test]
fn spectral_norm_matches_a_hand_computation() {
    let device = device();
    // [[3, 0], [4, 5]]: singular values sqrt(45) and sqrt(5).
    let m = Tensor::<2>::from_data([[3.0, 0.0], [4.0, 5.0]], &device);
    assert!((spectral_norm(m) - 45f64.sqrt()).abs() < 1e-9);
    let lstm = LstmConfig::new(3, 8).init(&device);
    assert_eq!(recurrent_spectral_norms(Probe::Lstm(&lstm)).len(), 4);
}
