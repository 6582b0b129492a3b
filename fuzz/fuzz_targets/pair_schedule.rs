#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: tandem_fuzz::pair::Input| {
    let _direct_items = tandem_fuzz::pair::run(&input);
});
