//! Exceptions as values.

/// Vector numbers.
pub const DE: u8 = 0;
pub const DB: u8 = 1;
pub const NMI: u8 = 2;
pub const BP: u8 = 3;
pub const OF: u8 = 4;
pub const BR: u8 = 5;
pub const UD: u8 = 6;
pub const NM: u8 = 7;
pub const DF: u8 = 8;
pub const TS: u8 = 10;
pub const NP: u8 = 11;
pub const SS: u8 = 12;
pub const GP: u8 = 13;
pub const PF: u8 = 14;
pub const MF: u8 = 16;
pub const AC: u8 = 17;

/// A fault or trap raised by an instruction, to be delivered by the CPU. EIP still points
/// at the instruction (faults) unless `trap` says the instruction completed.
///
/// Kept to 8 bytes so that every handler's `Result<(), Exception>` comes back in a
/// register: returning it through memory cost about a fifth of the dispatch time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub vector: u8,
    /// EIP is already where the handler must see it: past a completed instruction (INT3,
    /// INTO, debug traps), or at the first instruction of a task whose switch committed
    /// before the fault (a fault in the new task's context, never escalated to #DF with
    /// the event that caused the switch).
    pub trap: bool,
    /// Error codes are at most 16 bits wide on a 32-bit CPU (selector or #PF bits).
    pub error_code: Option<u16>,
}

impl Exception {
    pub const fn fault(vector: u8) -> Self {
        Self {
            vector,
            error_code: None,
            trap: false,
        }
    }
    pub const fn with_error(vector: u8, error: u32) -> Self {
        Self {
            vector,
            error_code: Some(error as u16),
            trap: false,
        }
    }

    /// The same fault raised after a task switch committed: it belongs to the new task.
    pub const fn in_new_task(self) -> Self {
        Self { trap: true, ..self }
    }

    /// The error code pushed with the exception, if it has one.
    pub fn error(&self) -> Option<u32> {
        self.error_code.map(u32::from)
    }
    pub const fn de() -> Self {
        Self::fault(DE)
    }
    pub const fn ud() -> Self {
        Self::fault(UD)
    }
    pub const fn br() -> Self {
        Self::fault(BR)
    }
    pub const fn nm() -> Self {
        Self::fault(NM)
    }
    pub const fn gp(error: u32) -> Self {
        Self::with_error(GP, error)
    }
    pub const fn ss(error: u32) -> Self {
        Self::with_error(SS, error)
    }
    pub const fn np(error: u32) -> Self {
        Self::with_error(NP, error)
    }
    pub const fn ts(error: u32) -> Self {
        Self::with_error(TS, error)
    }

    /// #DF; its error code is always 0.
    pub const fn df() -> Self {
        Self::with_error(DF, 0)
    }

    /// #DE, #TS, #NP, #SS, #GP: the "contributory" class that escalates to #DF.
    pub fn contributory(&self) -> bool {
        matches!(self.vector, DE | TS | NP | SS | GP)
    }

    /// What follows when `second` is raised while the CPU delivers `self`, by the SDM's
    /// table of exception classes:
    ///
    /// ```text
    ///  first \ second   benign    contributory   page fault
    ///  benign            serial    serial         serial
    ///  contributory      serial    #DF            serial
    ///  page fault        serial    #DF            #DF
    ///  double fault      serial    shutdown       shutdown
    /// ```
    /// "Serial" means `second` is delivered in place of `self` (which recurs when the
    /// faulting instruction runs again).
    pub fn then(&self, second: &Exception) -> Escalation {
        let severe = second.contributory() || second.vector == PF;
        match self.vector {
            DF if severe => Escalation::Shutdown,
            PF if severe => Escalation::DoubleFault,
            _ if self.contributory() && second.contributory() => Escalation::DoubleFault,
            _ => Escalation::Serial,
        }
    }

    pub fn name(&self) -> &'static str {
        match self.vector {
            DE => "#DE",
            DB => "#DB",
            NMI => "NMI",
            BP => "#BP",
            OF => "#OF",
            BR => "#BR",
            UD => "#UD",
            NM => "#NM",
            DF => "#DF",
            TS => "#TS",
            NP => "#NP",
            SS => "#SS",
            GP => "#GP",
            PF => "#PF",
            MF => "#MF",
            AC => "#AC",
            _ => "exception",
        }
    }
}

/// The outcome of a fault raised while delivering another exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalation {
    /// Deliver the second fault instead.
    Serial,
    /// Deliver #DF.
    DoubleFault,
    /// Triple fault: the CPU shuts down.
    Shutdown,
}

pub type Result<T> = std::result::Result<T, Exception>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_fault_table() {
        use Escalation::*;
        let ud = Exception::ud();
        let gp = Exception::gp(0);
        let pf = Exception::with_error(PF, 2);
        let df = Exception::df();
        let db = Exception::fault(DB);
        let cases = [
            (ud, gp, Serial),
            (ud, pf, Serial),
            (ud, db, Serial),
            (gp, db, Serial),
            (gp, Exception::np(0x10), DoubleFault),
            (Exception::de(), Exception::ts(0x28), DoubleFault),
            (Exception::ss(0), pf, Serial),
            (pf, db, Serial),
            (pf, gp, DoubleFault),
            (pf, pf, DoubleFault),
            (df, db, Serial),
            (df, gp, Shutdown),
            (df, pf, Shutdown),
        ];
        for (first, second, want) in cases {
            assert_eq!(
                first.then(&second),
                want,
                "{} then {}",
                first.name(),
                second.name()
            );
        }
        assert_eq!(df.error(), Some(0));
    }
}
