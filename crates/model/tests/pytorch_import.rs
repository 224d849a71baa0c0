//! PyTorch state_dicts saved as safetensors load into gatecast layers, and gatecast writes them back
//! under PyTorch's names.

mod common;

use burn::tensor::Tensor;
use common::*;
use gatecast_model::pytorch::{load_pytorch_safetensors, save_pytorch_safetensors};
use gatecast_model::{Lstm, LstmConfig};
use serde_json::Value;

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path("lstm_import.json")).unwrap())
        .unwrap()
}

fn fresh(device: &burn::tensor::Device) -> Lstm {
    LstmConfig::new(3, 4)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(device)
}

#[test]
fn pytorch_state_dict_loads_and_reproduces_pytorch_outputs() {
    let device = device();
    let want = expected();
    let mut lstm = fresh(&device);
    let x = tensor::<3>(&want["input"], &device);
    let (before, _) = lstm.forward(x.clone(), None);
    assert!(
        max_abs_diff(before, &want["output"]) > 1e-2,
        "random init differs"
    );

    let result = load_pytorch_safetensors(&mut lstm, fixture_path("lstm_state_dict.safetensors"))
        .expect("PyTorch state_dict loads");
    // 2 layers x 2 directions x 4 tensors.
    assert_eq!(result.applied.len(), 16, "{result}");
    assert!(result.unused.is_empty(), "{result}");

    let (out, state) = lstm.forward(x, None);
    assert!(max_abs_diff(out, &want["output"]) <= 1e-5);
    assert!(max_abs_diff(state.hidden, &want["h_n"]) <= 1e-5);
    assert!(max_abs_diff(state.cell, &want["c_n"]) <= 1e-5);
}

#[test]
fn saved_file_uses_pytorch_names_and_round_trips() {
    let device = device();
    let original = fresh(&device);
    let dir = std::env::temp_dir().join(format!("gatecast-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lstm.safetensors");
    save_pytorch_safetensors(&original, &path).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
    names.sort();
    let reference_bytes = std::fs::read(fixture_path("lstm_state_dict.safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&reference_bytes).unwrap();
    let mut pytorch_names: Vec<String> = reference.names().into_iter().map(String::from).collect();
    pytorch_names.sort();
    assert_eq!(names, pytorch_names, "exported names are PyTorch's");

    let mut loaded = fresh(&device);
    load_pytorch_safetensors(&mut loaded, &path).unwrap();
    let x = Tensor::<3>::random(
        [2, 6, 3],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let (a, _) = original.forward(x.clone(), None);
    let (b, _) = loaded.forward(x, None);
    assert_eq!(values(a), values(b));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn wrong_shape_is_a_clear_error_naming_the_file() {
    let device = device();
    let mut lstm = LstmConfig::new(3, 5)
        .with_num_layers(2)
        .with_bidirectional(true)
        .init(&device);
    let path = fixture_path("lstm_state_dict.safetensors");
    let err = load_pytorch_safetensors(&mut lstm, &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lstm_state_dict.safetensors"), "{err}");
    assert!(err.to_lowercase().contains("shape"), "{err}");
}

#[test]
fn missing_layers_are_an_error() {
    let device = device();
    let mut lstm = LstmConfig::new(3, 4)
        .with_num_layers(3)
        .with_bidirectional(true)
        .init(&device);
    let err = load_pytorch_safetensors(&mut lstm, fixture_path("lstm_state_dict.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("layers.2"), "{err}");
}
