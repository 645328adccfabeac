"""The public city-management record: weekly and monthly figures per city, district and department, with charts."""
