; Inno Setup script for the Windows installer of Knowledge Miner (Inno Setup 6).
; Built by .github/workflows/windows.yml after `pyinstaller packaging/kminer.spec`:
;   iscc /DAppVersion=0.1.0 /DBundleDir=..\..\dist\kminer /DIconFile=..\..\build\pyinstaller\kminer\kminer.ico packaging\windows\kminer.iss
; Signing: pass /DSign and /Skminer="signtool sign /fd sha256 /f cert.pfx /p PASSWORD $f"
; (packaging/windows/sign.ps1 does this when KMINER_SIGN_CERT is set).
; Paths below are relative to this file's folder.

#define AppName "Knowledge Miner"
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\kminer"
#endif

[Setup]
AppId={{6C0E5B8A-4F5D-4C8B-9E3A-2D7A1B9C4E11}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=Knowledge Miner
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\Knowledge Miner
DefaultGroupName=Knowledge Miner
DisableProgramGroupPage=yes
UninstallDisplayIcon={app}\kminerw.exe
UninstallDisplayName={#AppName}
OutputDir=..\..\dist
OutputBaseFilename=knowledge-miner-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Per-user install by default (no admin needed on a rig); the dialog offers all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
WizardStyle=modern
CloseApplications=yes
#ifdef IconFile
SetupIconFile={#IconFile}
#endif
#ifdef Sign
SignTool=kminer
SignedUninstaller=yes
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startup"; Description: "Start Knowledge Miner when I sign in (it mines only in the modes you set)"; GroupDescription: "Start-up:"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Knowledge Miner"; Filename: "{app}\kminerw.exe"; WorkingDir: "{app}"
Name: "{group}\Knowledge Miner self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\kminer.exe"" self-test"; WorkingDir: "{app}"
Name: "{group}\Uninstall Knowledge Miner"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Knowledge Miner"; Filename: "{app}\kminerw.exe"; WorkingDir: "{app}"; Tasks: desktopicon

[Registry]
; The optional start at sign-in; removed again by the uninstaller.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "KnowledgeMiner"; ValueData: """{app}\kminerw.exe"""; Flags: uninsdeletevalue; Tasks: startup

[Run]
Filename: "{app}\kminerw.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

; No [UninstallDelete]: the uninstaller removes only what it installed. Wallets, the chain,
; jobs and settings live in the user's own folders (%LOCALAPPDATA%\knowledge-miner) and stay.
