"""The one place the UI imports Qt from (Anki's `aqt.qt` habit): swap or pin bindings here."""

from PySide6.QtCore import (  # noqa: F401
    QByteArray, QEvent, QObject, QPointF, QRectF, QSize, Qt, QTimer, Signal, Slot, qVersion,
)
from PySide6.QtGui import (  # noqa: F401
    QAction, QBrush, QCloseEvent, QColor, QFont, QGuiApplication, QIcon, QKeySequence,
    QPainter, QPainterPath, QPalette, QPen, QPixmap,
)
from PySide6.QtWidgets import (  # noqa: F401
    QAbstractItemView, QHeaderView, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
    QApplication, QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
    QFormLayout, QLineEdit, QTabWidget, QTextBrowser, QFrame, QGridLayout, QHBoxLayout, QLabel,
    QListWidget, QListWidgetItem, QMainWindow, QMenu, QMessageBox, QScrollArea, QSizePolicy,
    QSpinBox, QStackedWidget, QStatusBar, QSystemTrayIcon, QToolButton, QVBoxLayout, QWidget,
)
# wallet view and first-run wizard
from PySide6.QtGui import QImage  # noqa: F401,E402
from PySide6.QtWidgets import (  # noqa: F401,E402
    QFileDialog, QGroupBox, QProgressBar, QRadioButton, QWizard, QWizardPage,
)
# the Fleet page
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem  # noqa: F401,E402
