//! The tray icon and its menu: status line (disabled item: Linux ignores tooltips), Open window,
//! Sync now, Quit. The icon follows `Status::tray_state` (worst condition wins).

use kkt_core::status::{Status, TrayState};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Runtime};

pub const OPEN: &str = "open";
pub const SYNC: &str = "sync";
pub const QUIT: &str = "quit";

fn icon(state: TrayState) -> tauri::Result<Image<'static>> {
    let bytes: &[u8] = match state {
        TrayState::Ok => include_bytes!("../../icons/tray-ok-64.png"),
        TrayState::Waiting => include_bytes!("../../icons/tray-waiting-64.png"),
        TrayState::Offline => include_bytes!("../../icons/tray-offline-64.png"),
        TrayState::Attention => include_bytes!("../../icons/tray-attention-64.png"),
    };
    Image::from_bytes(bytes)
}

/// The tray and the parts of it that change.
pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    status: MenuItem<R>,
    shown: Option<(TrayState, String)>,
}

impl<R: Runtime> Tray<R> {
    pub fn create(
        app: &AppHandle<R>,
        on_menu: impl Fn(&AppHandle<R>, &str) + Send + Sync + 'static,
    ) -> tauri::Result<Tray<R>> {
        let status = MenuItem::with_id(app, "status", "KKT Adapter…", false, None::<&str>)?;
        let menu = Menu::with_items(
            app,
            &[
                &status,
                &PredefinedMenuItem::separator(app)?,
                &MenuItem::with_id(app, OPEN, "Открыть окно (Open window)", true, None::<&str>)?,
                &MenuItem::with_id(app, SYNC, "Синхронизировать сейчас (Sync now)", true, None::<&str>)?,
                &PredefinedMenuItem::separator(app)?,
                &MenuItem::with_id(app, QUIT, "Выход (Quit)", true, None::<&str>)?,
            ],
        )?;
        let icon = TrayIconBuilder::with_id("kkt")
            .icon(icon(TrayState::Waiting)?)
            .tooltip("KKT Adapter")
            .menu(&menu)
            .show_menu_on_left_click(true)
            .on_menu_event(move |app, event| on_menu(app, event.id().as_ref()))
            .build(app)?;
        Ok(Tray {
            icon,
            status,
            shown: None,
        })
    }

    /// Shows `s`; touches the tray only when what it shows changed.
    pub fn update(&mut self, s: &Status) -> tauri::Result<()> {
        let state = s.tray_state();
        let line = s.status_line();
        if self.shown.as_ref().is_some_and(|(st, l)| *st == state && *l == line) {
            return Ok(());
        }
        if self.shown.as_ref().is_none_or(|(st, _)| *st != state) {
            self.icon.set_icon(Some(icon(state)?))?;
        }
        self.status.set_text(&line)?;
        self.icon.set_tooltip(Some(format!("KKT Adapter: {line}")))?;
        self.shown = Some((state, line));
        Ok(())
    }
}
