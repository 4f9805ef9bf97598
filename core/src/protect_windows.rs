//! Windows: the data and config directories get a protected DACL of our own — full control for
//! the current user and SYSTEM, nothing inherited from above, inherited by every file and
//! folder made inside (SECURITY.md "Files"). A profile's default ACL also lets Administrators
//! read; a `--data-dir` outside the profile (`C:\KKT`) would otherwise let every local user read
//! the receipts.
//!
//! The access list is written in SDDL (Microsoft, "Security Descriptor String Format"):
//! `D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;<user SID>)` — `P` protected (no inheritance from the
//! parent), `AI` auto-inherited; `A` allow, `OICI` inherited by files and folders, `FA` file all
//! access, `SY` LocalSystem. Applied with `SetNamedSecurityInfoW(…, DACL_SECURITY_INFORMATION |
//! PROTECTED_DACL_SECURITY_INFORMATION, …)`, which also propagates it to existing children.

use std::ffi::c_void;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;
use windows_sys::Win32::Foundation::{CloseHandle, ERROR_SUCCESS, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1, SE_FILE_OBJECT,
    SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetTokenInformation,
    PROTECTED_DACL_SECURITY_INFORMATION, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The current user's SID as a string (`S-1-5-21-…`).
fn user_sid() -> std::io::Result<String> {
    // SAFETY: every pointer passed is either valid for the call or null where the API allows it;
    // the token handle and the string are released on every path.
    unsafe {
        let mut token: HANDLE = null_mut();
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
            return Err(last_error("OpenProcessToken"));
        }
        let mut len = 0u32;
        GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len);
        let mut buf = vec![0u8; len.max(64) as usize];
        let ok = GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), buf.len() as u32, &mut len);
        CloseHandle(token);
        if ok == 0 {
            return Err(last_error("GetTokenInformation"));
        }
        let user = &*(buf.as_ptr() as *const TOKEN_USER);
        let mut text: *mut u16 = null_mut();
        if ConvertSidToStringSidW(user.User.Sid, &mut text) == 0 {
            return Err(last_error("ConvertSidToStringSidW"));
        }
        let mut n = 0;
        while *text.add(n) != 0 {
            n += 1;
        }
        let sid = String::from_utf16_lossy(std::slice::from_raw_parts(text, n));
        LocalFree(text as *mut c_void);
        Ok(sid)
    }
}

/// The SDDL of the access list (kept apart for the unit test).
pub fn sddl(user_sid: &str) -> String {
    format!("D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;{user_sid})")
}

/// Gives `dir` (and, by inheritance, everything in it) the user-and-SYSTEM-only access list.
pub fn protect_dir(dir: &Path) -> std::io::Result<()> {
    let sddl = wide(&sddl(&user_sid()?));
    let path: Vec<u16> = dir.as_os_str().encode_wide().chain(std::iter::once(0)).collect();
    // SAFETY: `sddl` and `path` are NUL-terminated and outlive the calls; the descriptor is
    // freed with LocalFree as the API requires; the DACL points into it and is not used after.
    unsafe {
        let mut sd: *mut c_void = null_mut();
        if ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.as_ptr(), SDDL_REVISION_1, &mut sd, null_mut())
            == 0
        {
            return Err(last_error("ConvertStringSecurityDescriptorToSecurityDescriptorW"));
        }
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = null_mut();
        if GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) == 0 || present == 0 {
            LocalFree(sd);
            return Err(last_error("GetSecurityDescriptorDacl"));
        }
        let status = SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            dacl,
            null_mut(),
        );
        LocalFree(sd);
        if status != ERROR_SUCCESS {
            return Err(std::io::Error::from_raw_os_error(status as i32));
        }
    }
    Ok(())
}
