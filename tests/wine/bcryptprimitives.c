/*
 * TEST FIXTURE ONLY — never shipped in a package or an installer.
 *
 * Rust's standard library on Windows draws random bytes from ProcessPrng, exported by
 * bcryptprimitives.dll (Windows 10 and later). Wine 8.0, which runs the Windows build in our tests,
 * has no such DLL, so every Rust program stops at start with "bcryptprimitives.dll not found".
 * This stand-in exports ProcessPrng on top of RtlGenRandom (advapi32's SystemFunction036), which
 * Wine does have. It is placed beside the .exe in the test's own copy only.
 *
 * Signatures: ProcessPrng — "BOOL ProcessPrng(PBYTE pbData, SIZE_T cbData)", always TRUE
 * (Microsoft's bcryptprimitives documentation); RtlGenRandom — "BOOLEAN RtlGenRandom(PVOID
 * RandomBuffer, ULONG RandomBufferLength)" (Microsoft Learn, ntsecapi.h).
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}
