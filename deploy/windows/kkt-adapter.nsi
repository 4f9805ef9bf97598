; KKT Adapter — Windows installer (NSIS 3, built on Debian with makensis by scripts/package.sh).
;
; makensis -DVERSION=0.1.0 -DSRC=<dir with the .exe files> -DOUT=<setup.exe> deploy/windows/kkt-adapter.nsi
;
; Per-user install (no administrator rights): programs in %LOCALAPPDATA%\Programs\KKT Adapter,
; Start menu entries, an optional "start with Windows" (the user's Run key, value "KKT Adapter",
; the same one the app's [desktop] autostart setting manages), an entry in "Apps & features".
; The uninstaller keeps the receipts and settings (%APPDATA%\KKT Adapter) unless the user ticks
; "Delete receipts and settings" (or runs it with /PURGE). Silent: setup.exe /S, uninstall.exe /S.
; Written by hand for Debian's makensis: Tauri's NSIS bundler downloads plugins at build time.

Unicode true
Target amd64-unicode
ManifestDPIAware true
RequestExecutionLevel user
SetCompressor /SOLID lzma

!ifndef VERSION
  !error "pass -DVERSION=x.y.z (the workspace version)"
!endif
!ifndef SRC
  !error "pass -DSRC=<directory with kkt-adapter.exe and kkt-adapterd.exe>"
!endif
!ifndef OUT
  !define OUT "KKT-Adapter-${VERSION}-setup.exe"
!endif

!define PRODUCT "KKT Adapter"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${PRODUCT}"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

Name "${PRODUCT} ${VERSION}"
OutFile "${OUT}"
InstallDir "$LOCALAPPDATA\Programs\${PRODUCT}"
InstallDirRegKey HKCU "${UNINST_KEY}" "InstallLocation"
BrandingText "${PRODUCT} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=1033 "ProductName" "${PRODUCT}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileDescription" "${PRODUCT} installer"
VIAddVersionKey /LANG=1033 "LegalCopyright" "MIT License"

!define MUI_ICON "${SRC}\icon.ico"
!define MUI_UNICON "${SRC}\icon.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\kkt-adapter.exe"
!define MUI_COMPONENTSPAGE_SMALLDESC
; The language chosen at install is remembered for the uninstaller.
!define MUI_LANGDLL_REGISTRY_ROOT HKCU
!define MUI_LANGDLL_REGISTRY_KEY "${UNINST_KEY}"
!define MUI_LANGDLL_REGISTRY_VALUENAME "Installer Language"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_LICENSE "${SRC}\LICENSE.txt"
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "Russian"
!insertmacro MUI_LANGUAGE "English"

LangString SecApp ${LANG_RUSSIAN} "KKT Adapter (программа)"
LangString SecApp ${LANG_ENGLISH} "KKT Adapter (program)"
LangString SecAppDesc ${LANG_RUSSIAN} "Приложение в трее, служебная программа kkt-adapterd и ярлыки в меню «Пуск»."
LangString SecAppDesc ${LANG_ENGLISH} "The tray app, the kkt-adapterd daemon and Start menu entries."
LangString SecAuto ${LANG_RUSSIAN} "Запускать вместе с Windows"
LangString SecAuto ${LANG_ENGLISH} "Start with Windows"
LangString SecAutoDesc ${LANG_RUSSIAN} "Запускать KKT Adapter в трее при входе в Windows, чтобы касса всегда могла пробить чек."
LangString SecAutoDesc ${LANG_ENGLISH} "Start KKT Adapter in the tray at sign-in, so the till can always issue receipts."
LangString SecPurge ${LANG_RUSSIAN} "Удалить чеки и настройки"
LangString SecPurge ${LANG_ENGLISH} "Delete receipts and settings"
LangString SecPurgeDesc ${LANG_RUSSIAN} "Удалить буфер чеков, журналы и настройки (%APPDATA%\KKT Adapter). Неотправленные в ОФД чеки будут потеряны."
LangString SecPurgeDesc ${LANG_ENGLISH} "Delete the receipt buffer, logs and settings (%APPDATA%\KKT Adapter). Receipts not yet delivered to the OFD are lost."

Section "!$(SecApp)" SEC_APP
  SectionIn RO
  SetOutPath "$INSTDIR"
  File "${SRC}\kkt-adapter.exe"
  File "${SRC}\kkt-adapterd.exe"
  File "${SRC}\icon.ico"
  File "${SRC}\README.md"
  File "${SRC}\LICENSE.txt"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateDirectory "$SMPROGRAMS\${PRODUCT}"
  CreateShortcut "$SMPROGRAMS\${PRODUCT}\${PRODUCT}.lnk" "$INSTDIR\kkt-adapter.exe" "" "$INSTDIR\icon.ico"
  CreateShortcut "$SMPROGRAMS\${PRODUCT}\Uninstall ${PRODUCT}.lnk" "$INSTDIR\uninstall.exe"

  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\icon.ico"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "KKT Adapter team"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" $0
SectionEnd

Section "$(SecAuto)" SEC_AUTO
  WriteRegStr HKCU "${RUN_KEY}" "${PRODUCT}" '"$INSTDIR\kkt-adapter.exe" --hidden'
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SEC_APP} $(SecAppDesc)
  !insertmacro MUI_DESCRIPTION_TEXT ${SEC_AUTO} $(SecAutoDesc)
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Function .onInit
  !insertmacro MUI_LANGDLL_DISPLAY
FunctionEnd

Section "un.!$(SecApp)" UNSEC_APP
  SectionIn RO
  DeleteRegValue HKCU "${RUN_KEY}" "${PRODUCT}"
  Delete "$SMPROGRAMS\${PRODUCT}\${PRODUCT}.lnk"
  Delete "$SMPROGRAMS\${PRODUCT}\Uninstall ${PRODUCT}.lnk"
  RMDir "$SMPROGRAMS\${PRODUCT}"
  Delete "$INSTDIR\kkt-adapter.exe"
  Delete "$INSTDIR\kkt-adapterd.exe"
  Delete "$INSTDIR\icon.ico"
  Delete "$INSTDIR\README.md"
  Delete "$INSTDIR\LICENSE.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINST_KEY}"
SectionEnd

; Not selected unless ticked (or /PURGE given): the receipts are the shop's legal record.
Section /o "un.$(SecPurge)" UNSEC_PURGE
  RMDir /r "$APPDATA\${PRODUCT}"
SectionEnd

!insertmacro MUI_UNFUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${UNSEC_APP} $(SecAppDesc)
  !insertmacro MUI_DESCRIPTION_TEXT ${UNSEC_PURGE} $(SecPurgeDesc)
!insertmacro MUI_UNFUNCTION_DESCRIPTION_END

Function un.onInit
  !insertmacro MUI_UNGETLANGUAGE
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/PURGE" $1
  ${IfNot} ${Errors}
    SectionSetFlags ${UNSEC_PURGE} ${SF_SELECTED}
  ${EndIf}
FunctionEnd
