//! Behaviour beyond PyTorch parity: errors on bad arguments, variable-length semantics with
//! garbage in the padding, dropout only in training, shapes of every configuration.

mod common;

use burn::module::Module;
use burn::tensor::{Distribution, Tensor, TensorData};
use common::*;
use gatecast_model::{GruConfig, LstmConfig, LstmState, RecurrentError, RnnConfig};

fn randn(shape: [usize; 3], device: &burn::tensor::Device) -> Tensor<3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let device = device();
    let gru = GruConfig::new(3, 4).init(&device);
    let x = randn([2, 5, 3], &device);
    let err = gru.try_forward(x.clone(), None, Some(&[5, 0])).unwrap_err();
    assert_eq!(
        err,
        RecurrentError::LengthOutOfRange {
            index: 1,
            length: 0,
            max_len: 5
        }
    );
    assert!(err.to_string().contains("lengths[1] = 0"), "{err}");
    let err = gru.try_forward(x.clone(), None, Some(&[6, 1])).unwrap_err();
    assert!(matches!(
        err,
        RecurrentError::LengthOutOfRange {
            index: 0,
            length: 6,
            ..
        }
    ));
    let err = gru.try_forward(x, None, Some(&[5, 5, 5])).unwrap_err();
    assert_eq!(
        err,
        RecurrentError::LengthsCount {
            expected: 2,
            found: 3
        }
    );
    assert!(err.to_string().contains("one length per sequence"));
}

#[test]
fn bad_shapes_are_errors_naming_the_argument() {
    let device = device();
    let lstm = LstmConfig::new(3, 4).with_num_layers(2).init(&device);
    let err = lstm
        .try_forward(randn([2, 5, 7], &device), None, None)
        .unwrap_err();
    assert!(matches!(
        err,
        RecurrentError::InputFeatures {
            expected: 3,
            found: 7,
            ..
        }
    ));
    assert!(err.to_string().contains("input_size = 3"), "{err}");

    let state = LstmState::new(
        Tensor::zeros([2, 2, 4], &device),
        Tensor::zeros([1, 2, 4], &device),
    );
    let err = lstm
        .try_forward(randn([2, 5, 3], &device), Some(state), None)
        .unwrap_err();
    assert_eq!(
        err,
        RecurrentError::StateShape {
            which: "cell",
            expected: [2, 2, 4],
            found: [1, 2, 4]
        }
    );
    let err = lstm
        .try_forward(randn([2, 0, 3], &device), None, None)
        .unwrap_err();
    assert!(matches!(err, RecurrentError::EmptyInput { .. }));
}

#[test]
fn bad_configs_are_errors_naming_the_option() {
    let device = device();
    let err = RnnConfig::new(3, 4)
        .with_dropout(1.0)
        .try_init(&device)
        .unwrap_err();
    assert!(err.to_string().contains("dropout = 1"), "{err}");
    let err = GruConfig::new(3, 0).try_init(&device).unwrap_err();
    assert!(err.to_string().contains("hidden_size"), "{err}");
    let err = LstmConfig::new(0, 4).try_init(&device).unwrap_err();
    assert!(err.to_string().contains("input_size"), "{err}");
    let err = LstmConfig::new(3, 4)
        .with_num_layers(0)
        .try_init(&device)
        .unwrap_err();
    assert!(err.to_string().contains("num_layers"), "{err}");
}

/// A padded batch with lengths gives, for each sequence, exactly what running that sequence
/// alone gives — whatever garbage sits in the padding — and zeros past its end.
#[test]
fn lengths_match_running_each_sequence_alone() {
    let device = device();
    let lstm = LstmConfig::new(2, 3)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    let lengths = [4usize, 7, 1];
    let (batch, time) = (lengths.len(), 7);
    let mut data = values(randn([batch, time, 2], &device));
    for (b, &len) in lengths.iter().enumerate() {
        for t in len..time {
            for f in 0..2 {
                data[(b * time + t) * 2 + f] = 1.0e4; // garbage in the padding
            }
        }
    }
    let x = Tensor::<3>::from_data(TensorData::new(data, [batch, time, 2]), &device);
    let (out, state) = lstm.try_forward(x.clone(), None, Some(&lengths)).unwrap();
    let out = values(out);
    let (h, c) = (values(state.hidden), values(state.cell));

    for (b, &len) in lengths.iter().enumerate() {
        let alone = x.clone().narrow(0, b, 1).narrow(1, 0, len);
        let (o1, s1) = lstm.forward(alone, None);
        let o1 = values(o1);
        for t in 0..time {
            for k in 0..6 {
                let got = out[(b * time + t) * 6 + k];
                let want = if t < len { o1[t * 6 + k] } else { 0.0 };
                assert!((got - want).abs() < 1e-6, "seq {b} t {t}: {got} vs {want}");
            }
        }
        let (h1, c1) = (values(s1.hidden), values(s1.cell));
        for row in 0..4 {
            for k in 0..3 {
                let idx = (row * batch + b) * 3 + k;
                assert!((h[idx] - h1[row * 3 + k]).abs() < 1e-6);
                assert!((c[idx] - c1[row * 3 + k]).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn dropout_between_layers_only_in_training() {
    let device = device().autodiff();
    let gru = GruConfig::new(3, 16)
        .with_num_layers(3)
        .with_dropout(0.5)
        .init(&device);
    let x = randn([4, 6, 3], &device);
    let (a, _) = gru.forward(x.clone(), None);
    let (b, _) = gru.forward(x.clone(), None);
    let diff = values(a - b).iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        diff > 1e-3,
        "two training passes draw different dropout masks"
    );

    let eval = gru.valid();
    let x = x.inner();
    let (c, _) = eval.forward(x.clone(), None);
    let (d, _) = eval.forward(x, None);
    assert!(!c.device().is_autodiff());
    assert_eq!(values(c), values(d), "no dropout in inference");

    // The same weights without dropout give the inference output: dropout is the only difference.
    let single = GruConfig::new(3, 16)
        .with_num_layers(1)
        .with_dropout(0.5)
        .init(&device);
    let x1 = randn([2, 3, 3], &device);
    let (e, _) = single.forward(x1.clone(), None);
    let (f, _) = single.forward(x1, None);
    assert_eq!(
        values(e),
        values(f),
        "a single layer has no inter-layer dropout"
    );
}

#[test]
fn shapes_of_every_configuration() {
    let device = device();
    for layers in [1, 3] {
        for bidir in [false, true] {
            let d = if bidir { 2 } else { 1 };
            let x = randn([5, 4, 2], &device);
            let rnn = RnnConfig::new(2, 6)
                .with_num_layers(layers)
                .with_bidirectional(bidir)
                .init(&device);
            let (o, h) = rnn.forward(x.clone(), None);
            assert_eq!(o.dims(), [5, 4, d * 6]);
            assert_eq!(h.dims(), [layers * d, 5, 6]);
            assert_eq!(rnn.output_size(), d * 6);
            let gru = GruConfig::new(2, 6)
                .with_num_layers(layers)
                .with_bidirectional(bidir)
                .init(&device);
            let (o, h) = gru.forward(x.clone(), Some(h));
            assert_eq!(o.dims(), [5, 4, d * 6]);
            assert_eq!(h.dims(), [layers * d, 5, 6]);
            let lstm = LstmConfig::new(2, 6)
                .with_num_layers(layers)
                .with_bidirectional(bidir)
                .init(&device);
            let (o, s) = lstm.forward(x, None);
            assert_eq!(o.dims(), [5, 4, d * 6]);
            assert_eq!(s.cell.dims(), [layers * d, 5, 6]);
        }
    }
}

/// The final state of one call continues the sequence in the next: running [x1, x2] at once
/// equals running x1, then x2 from x1's final state (streaming / stateful forecasting).
#[test]
fn state_carries_across_calls() {
    let device = device();
    let lstm = LstmConfig::new(3, 5).with_num_layers(2).init(&device);
    let x = randn([2, 8, 3], &device);
    let (whole, s_whole) = lstm.forward(x.clone(), None);
    let (_, s1) = lstm.forward(x.clone().narrow(1, 0, 5), None);
    let (second, s2) = lstm.forward(x.narrow(1, 5, 3), Some(s1));
    let a = values(whole.narrow(1, 5, 3));
    let b = values(second);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6);
    }
    for (x, y) in values(s_whole.cell).iter().zip(&values(s2.cell)) {
        assert!((x - y).abs() < 1e-6);
    }
}
