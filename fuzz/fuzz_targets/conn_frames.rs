#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: tandem_fuzz::conn_frames::Input| {
    let _direct_items = tandem_fuzz::conn_frames::run(&input);
});
