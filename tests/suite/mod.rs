mod support;

mod daemon;
mod destinations;
mod docker;
mod ergonomics;
mod errors;
mod golden;
mod hostile;
mod hostile_support;
mod inputs;
mod kinds;
mod outputs;
mod registry;
mod registry_support;
mod reproducible;
mod uid;
mod wso2;
