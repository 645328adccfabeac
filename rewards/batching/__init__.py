"""Work that arrives together, done together: a batch's board updates (`board_batch`) and concurrent verdicts given
in one transaction (`verdicts`)."""
