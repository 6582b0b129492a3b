#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: tandem_fuzz::pair::Input| {
    tandem_fuzz::pair::run(&input);
});
