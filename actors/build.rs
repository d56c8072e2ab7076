//! Generates Rust bindings for the part of the nDPI C API that `imsitrace::ndpi` uses and links
//! libndpi dynamically (nDPI is LGPL-3.0).
//!
//! libndpi is found with pkg-config (`libndpi.pc`, shipped by Debian's libndpi-dev). The binding
//! code is written against the nDPI 4.2 API, so other versions are rejected here with a message
//! instead of failing later with type errors in the generated code.

use std::env;
use std::path::{Path, PathBuf};

/// Oldest accepted libndpi version (inclusive).
const NDPI_MIN_VERSION: &str = "4.2";
/// First rejected libndpi version. The binding calls the 4.2 signatures, and newer releases
/// change some of them (`ndpi_detection_process_packet` takes an extra `input_info` argument).
const NDPI_MAX_VERSION: &str = "4.3";

/// C functions called by `actors/src/ndpi/ffi.rs`.
const FUNCTIONS: &[&str] = &[
    "ndpi_init_detection_module",
    "ndpi_set_protocol_detection_bitmask2",
    "ndpi_finalize_initialization",
    "ndpi_exit_detection_module",
    "ndpi_get_api_version",
    "ndpi_revision",
    "ndpi_get_num_supported_protocols",
    "ndpi_detection_get_sizeof_ndpi_flow_struct",
    "ndpi_flow_malloc",
    "ndpi_flow_free",
    "ndpi_free_flow_data",
    "ndpi_detection_process_packet",
    "ndpi_extra_dissection_possible",
    "ndpi_detection_giveup",
    "ndpi_protocol2name",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");

    let library = match pkg_config::Config::new()
        .range_version(NDPI_MIN_VERSION..NDPI_MAX_VERSION)
        .cargo_metadata(true)
        .probe("libndpi")
    {
        Ok(library) => library,
        Err(error) => {
            panic!(
                "libndpi >= {NDPI_MIN_VERSION}, < {NDPI_MAX_VERSION} was not found with \
                 pkg-config: {error}\nInstall it with `apt-get install libndpi-dev` \
                 (Debian 12 ships 4.2) or run scripts/setup.sh."
            );
        }
    };

    let header = find_header(&library.include_paths);
    println!("cargo:rerun-if-changed={}", header.display());

    let mut builder = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_args(
            library
                .include_paths
                .iter()
                .map(|path| format!("-I{}", path.display())),
        )
        .allowlist_type("ndpi_protocol")
        .allowlist_type("ndpi_protocol_bitmask_struct_t")
        .allowlist_type("ndpi_prefs")
        .allowlist_var("NDPI_API_VERSION")
        // Both structs are used only behind pointers. Opaque blobs keep their size and alignment
        // (checked against the library at run time) without generating hundreds of fields.
        .opaque_type("ndpi_detection_module_struct")
        .opaque_type("ndpi_flow_struct")
        // bindgen still emits the members of an opaque struct's anonymous unions and nested
        // structs; nothing references them.
        .blocklist_type("ndpi_flow_struct_.+|ndpi_flow_(tcp|udp)_struct.*")
        .blocklist_type("tls_heuristics|message|message_t|ndpi_http_method")
        .blocklist_type("ndpi_in6_addr.*|ndpi_ip_addr_t")
        .derive_default(true)
        .derive_debug(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for function in FUNCTIONS {
        builder = builder.allowlist_function(function);
    }

    let bindings = builder
        .generate()
        .unwrap_or_else(|error| panic!("bindgen failed on {}: {error}", header.display()));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let out_file = out_dir.join("ndpi_bindings.rs");
    bindings
        .write_to_file(&out_file)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", out_file.display()));
}

/// Returns the path of `ndpi_api.h` in the first pkg-config include directory that has it.
fn find_header(include_paths: &[PathBuf]) -> PathBuf {
    let candidates = include_paths
        .iter()
        .flat_map(|dir| [dir.join("ndpi_api.h"), dir.join("ndpi").join("ndpi_api.h")]);
    for candidate in candidates {
        if Path::new(&candidate).is_file() {
            return candidate;
        }
    }
    panic!(
        "ndpi_api.h not found under the libndpi include paths {include_paths:?}; \
         reinstall libndpi-dev"
    );
}
