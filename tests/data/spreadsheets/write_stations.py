"""Writes a station register as an agency exports it from Excel, with openpyxl (a real .xlsx
writer): a first sheet of notes, then the sheet "消防站" with a header row, text, numbers, an
integer, a date-time cell in Excel's date format, and a blank row. Usage: write_stations.py OUT"""
import datetime
import sys

import openpyxl

book = openpyxl.Workbook()
notes = book.active
notes.title = "说明"
notes["A1"] = "消防站登记表，2026年12月导出"
sheet = book.create_sheet("消防站")
sheet.append(["station_id", "name", "kind", "lon", "lat", "status", "engines", "updated_at"])
rows = [
    ("LN-SY-101", "浑南区消防救援站", "class1", 123.4523, 41.7241, "in_service", 5,
     datetime.datetime(2026, 11, 1, 9, 30, 0)),
    ("LN-SY-102", "中街微型消防站, 沈河", "micro", 123.4581, 41.7962, "in_service", 1,
     datetime.datetime(2026, 11, 2, 14, 5, 0)),
    ("LN-SY-103", "新区\"特勤\"站", "special_duty", 123.5, 41.75, "out_of_service", 8,
     datetime.datetime(2026, 11, 3, 0, 0, 0)),
]
for row in rows:
    sheet.append(row)
sheet.append([])
sheet.append(["LN-SY-104", "坏的站", "class9", 123.41, 41.8, "in_service", 2, None])
for cell in sheet["H"][1:]:
    cell.number_format = "yyyy-mm-dd hh:mm:ss"
book.save(sys.argv[1])
