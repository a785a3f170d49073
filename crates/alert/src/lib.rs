//! Alerts from detections.
pub mod alert;
pub mod alerts;
pub mod config;
pub mod engine;
pub mod error;
pub mod group;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod notification;
pub mod payload;
pub mod receiver;
pub mod route;
pub mod silence;
pub mod state;
pub mod time;
