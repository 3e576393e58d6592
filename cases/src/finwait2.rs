use harness::Case;
pub static CASES: &[Case] = &[];
