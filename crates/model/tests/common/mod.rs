//! Helpers shared by the integration tests: fixture loading and a layer enum over the three cells.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use gatecast_model::{
    Gru, GruConfig, Lstm, LstmConfig, LstmState, Nonlinearity, RecurrentLayer, Rnn, RnnConfig,
};
use serde_json::Value;

/// This package's directory. `cargo test` sets `CARGO_MANIFEST_DIR` when it runs a test, naming
/// the checkout under test even when a shared target directory reuses a binary compiled in
/// another checkout, whose path `env!` would have baked in.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

pub fn fixture_path(name: &str) -> PathBuf {
    manifest_dir().join("tests").join("fixtures").join(name)
}

pub fn load_cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture_path(file)).expect("fixture file");
    serde_json::from_str::<Value>(&text)
        .expect("fixture json")
        .as_array()
        .expect("array of cases")
        .clone()
}

pub fn shape_data(v: &Value) -> (Vec<usize>, Vec<f32>) {
    let shape = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    (shape, data)
}

pub fn tensor<const D: usize>(v: &Value, device: &Device) -> Tensor<D> {
    let (shape, data) = shape_data(v);
    Tensor::from_data(TensorData::new(data, shape), device)
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Largest absolute difference between a tensor and a fixture entry, after checking shapes.
pub fn max_abs_diff<const D: usize>(actual: Tensor<D>, expected: &Value) -> f32 {
    let (shape, want) = shape_data(expected);
    assert_eq!(actual.dims().to_vec(), shape, "shape differs from PyTorch");
    let got = values(actual);
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// One of the three layers, so the tests can treat them alike.
pub enum AnyLayer {
    Rnn(Rnn),
    Gru(Gru),
    Lstm(Lstm),
}

impl AnyLayer {
    pub fn from_case(case: &Value, device: &Device) -> Self {
        let input = case["input_size"].as_u64().unwrap() as usize;
        let hidden = case["hidden_size"].as_u64().unwrap() as usize;
        let layers = case["num_layers"].as_u64().unwrap() as usize;
        let bidir = case["bidirectional"].as_bool().unwrap();
        let bias = case["bias"].as_bool().unwrap();
        match case["cell"].as_str().unwrap() {
            cell @ ("rnn_tanh" | "rnn_relu") => AnyLayer::Rnn(
                RnnConfig::new(input, hidden)
                    .with_num_layers(layers)
                    .with_bidirectional(bidir)
                    .with_bias(bias)
                    .with_nonlinearity(if cell == "rnn_relu" {
                        Nonlinearity::Relu
                    } else {
                        Nonlinearity::Tanh
                    })
                    .init(device),
            ),
            "gru" => AnyLayer::Gru(
                GruConfig::new(input, hidden)
                    .with_num_layers(layers)
                    .with_bidirectional(bidir)
                    .with_bias(bias)
                    .init(device),
            ),
            "lstm" => AnyLayer::Lstm(
                LstmConfig::new(input, hidden)
                    .with_num_layers(layers)
                    .with_bidirectional(bidir)
                    .with_bias(bias)
                    .init(device),
            ),
            other => panic!("unknown cell {other}"),
        }
    }

    pub fn layers(&self) -> &Vec<RecurrentLayer> {
        match self {
            AnyLayer::Rnn(m) => &m.layers,
            AnyLayer::Gru(m) => &m.layers,
            AnyLayer::Lstm(m) => &m.layers,
        }
    }

    pub fn layers_mut(&mut self) -> &mut Vec<RecurrentLayer> {
        match self {
            AnyLayer::Rnn(m) => &mut m.layers,
            AnyLayer::Gru(m) => &mut m.layers,
            AnyLayer::Lstm(m) => &mut m.layers,
        }
    }

    /// Returns (output, h_n, c_n).
    pub fn run(
        &self,
        x: Tensor<3>,
        h0: Option<Tensor<3>>,
        c0: Option<Tensor<3>>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<3>, Tensor<3>, Option<Tensor<3>>) {
        match self {
            AnyLayer::Rnn(m) => {
                let (o, h) = m.try_forward(x, h0, lengths).unwrap();
                (o, h, None)
            }
            AnyLayer::Gru(m) => {
                let (o, h) = m.try_forward(x, h0, lengths).unwrap();
                (o, h, None)
            }
            AnyLayer::Lstm(m) => {
                let state = h0.map(|h| LstmState::new(h, c0.expect("lstm needs c0")));
                let (o, s) = m.try_forward(x, state, lengths).unwrap();
                (o, s.hidden, Some(s.cell))
            }
        }
    }
}

/// Resolves a PyTorch parameter name (`weight_hh_l1_reverse`) to the gatecast parameter.
pub fn param_mut<'a>(layers: &'a mut [RecurrentLayer], name: &str) -> ParamSlot<'a> {
    let (base, reverse) = match name.strip_suffix("_reverse") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let (kind, layer) = base.rsplit_once("_l").expect("pytorch parameter name");
    let layer: usize = layer.parse().unwrap();
    let dir = if reverse {
        layers[layer].reverse.as_mut().unwrap()
    } else {
        &mut layers[layer].forward
    };
    match kind {
        "weight_ih" => ParamSlot::Matrix(&mut dir.weight_ih),
        "weight_hh" => ParamSlot::Matrix(&mut dir.weight_hh),
        "bias_ih" => ParamSlot::Vector(dir.bias_ih.as_mut().unwrap()),
        "bias_hh" => ParamSlot::Vector(dir.bias_hh.as_mut().unwrap()),
        other => panic!("unknown parameter {other}"),
    }
}

pub enum ParamSlot<'a> {
    Matrix(&'a mut Param<Tensor<2>>),
    Vector(&'a mut Param<Tensor<1>>),
}

/// Copies every PyTorch weight of a fixture case into the layer.
pub fn set_weights(layer: &mut AnyLayer, weights: &Value, device: &Device) {
    for (name, value) in weights.as_object().unwrap() {
        match param_mut(layer.layers_mut(), name) {
            ParamSlot::Matrix(p) => *p = Param::from_tensor(tensor::<2>(value, device)),
            ParamSlot::Vector(p) => *p = Param::from_tensor(tensor::<1>(value, device)),
        }
    }
}

/// The plain CPU device most tests run on (flex, Burn's recommended CPU backend).
pub fn device() -> Device {
    Device::flex()
}

/// Every backend this test build has, as (name, device): flex always; ndarray and wgpu when the
/// crate's features of the same name are on. `GATECAST_TEST_BACKENDS=flex,wgpu` narrows the list.
pub fn devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut all = vec![("flex", Device::flex())];
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    all.push(("ndarray", Device::ndarray()));
    #[cfg(feature = "wgpu")]
    all.push((
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
    ));
    match std::env::var("GATECAST_TEST_BACKENDS") {
        Ok(only) => {
            let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
            all.retain(|(name, _)| wanted.contains(name));
            assert!(
                !all.is_empty(),
                "GATECAST_TEST_BACKENDS={only} names no compiled backend"
            );
            all
        }
        Err(_) => all,
    }
}
